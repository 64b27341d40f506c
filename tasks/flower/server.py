"""Flower server of the sample task, in the original's layout.

Run by flmngr as `python3 server.py <workdir> [arguments]` in the task's
directory. It reports every round's metrics and "Finished" (or the error)
through the reporter, and fires the trigger when the accuracy is reached.
"""

import os
import sys

import flwr as fl

from flmngr_reporter import TaskReporter
from task import Net

ROUNDS = 3
TRIGGER_ACCURACY = 0.5


def main():
    manual = len(sys.argv) > 1 and sys.argv[1] == "cli"
    reporter = None if manual else TaskReporter()
    host = os.environ.get("FLMNGR_HOST", "0.0.0.0")
    port = os.environ.get("FLMNGR_PORT", "8080")
    state = {"round": 0, "triggered": False}

    def weighted_average(metrics):
        """Aggregates the clients' evaluation metrics, weighted by their
        example counts, and reports them as the round's stats."""
        total = sum(n for n, _ in metrics)
        accuracy = sum(n * m["accuracy"] for n, m in metrics) / total
        state["round"] += 1
        if reporter:
            reporter.send_stats(state["round"], round(accuracy, 4))
            if accuracy >= TRIGGER_ACCURACY and not state["triggered"]:
                state["triggered"] = True
                reporter.trigger("trigger_example", str(round(accuracy, 4)))
        return {"accuracy": accuracy}

    try:
        strategy = fl.server.strategy.FedAvg(
            fraction_fit=1.0,
            fraction_evaluate=1.0,
            min_fit_clients=2,
            min_evaluate_clients=2,
            min_available_clients=2,
            evaluate_metrics_aggregation_fn=weighted_average,
            initial_parameters=fl.common.ndarrays_to_parameters(Net().get_weights()),
        )
        fl.server.start_server(
            server_address=f"{host}:{port}",
            config=fl.server.ServerConfig(num_rounds=ROUNDS),
            strategy=strategy,
        )
        if reporter:
            reporter.send_info("Finished")
    except Exception as e:  # report, never die silently
        if manual:
            raise
        reporter.send_error(e)


if __name__ == "__main__":
    main()
