"""The ClientApp: trains and evaluates on the client's own data."""

from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from flmngr_linreg.task import local_data, mse, train as local_train

app = ClientApp()


def _data(context: Context):
    return local_data(str(context.node_config.get("flmngr-client-id", context.node_id)))


@app.train()
def train(msg: Message, context: Context):
    (x, y), _ = _data(context)
    [w] = msg.content["arrays"].to_numpy_ndarrays()
    cfg = context.run_config
    w = local_train(w, x, y, int(cfg["local-steps"]), float(cfg["learning-rate"]))
    metrics = MetricRecord({"loss": mse(w, x, y), "num-examples": len(y)})
    return Message(content=RecordDict({"arrays": ArrayRecord([w]), "metrics": metrics}), reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context):
    _, (x, y) = _data(context)
    [w] = msg.content["arrays"].to_numpy_ndarrays()
    metrics = MetricRecord({"mse": mse(w, x, y), "num-examples": len(y)})
    return Message(content=RecordDict({"metrics": metrics}), reply_to=msg)
