"""The ServerApp: FedAvg over the SuperNodes flmngr selected."""

from flwr.app import ArrayRecord, Context
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from flmngr_linreg.task import TRUE_WEIGHTS, initial_model

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    n = int(cfg["min-nodes"])
    strategy = FedAvg(min_train_nodes=n, min_evaluate_nodes=n, min_available_nodes=n)
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(initial_model()),
                            num_rounds=int(cfg["num-server-rounds"]))
    [w] = result.arrays.to_numpy_ndarrays()
    print("flmngr-linreg: final weights", [round(float(v), 3) for v in w], "true", TRUE_WEIGHTS.tolist())
