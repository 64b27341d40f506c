"""Flower client of the sample task, in the original's layout.

Run by flmngr as `python3 client.py <workdir> [arguments]`; the argument
`test-error` makes it fail on purpose (the original's experiment 2).
"""

import os
import socket
import sys
import time
import zlib

import flwr as fl

from flmngr_reporter import TaskReporter
from task import Net, load_data

PARTITIONS = 2


def wait_for_server(host, port, timeout=60.0):
    """The Flower client gives up at once when its server is not listening
    yet; clients often start before their server, so wait for it."""
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError:
            if time.time() > deadline:
                raise TimeoutError(f"the Flower server at {host}:{port} did not listen within {timeout:.0f}s")
            time.sleep(0.2)


def main():
    manual = len(sys.argv) > 1 and sys.argv[1] == "cli"
    arguments = sys.argv[2:]
    reporter = None if manual else TaskReporter()
    try:
        client_id = os.environ.get("FLMNGR_CLIENT", "cli")
        partition = zlib.crc32(client_id.encode()) % PARTITIONS
        digits = client_id.rstrip("0123456789")
        if digits != client_id:
            partition = (int(client_id[len(digits):]) - 1) % PARTITIONS
        x, y, x_test, y_test = load_data(partition, PARTITIONS)
        if "test-error" in arguments:
            raise Exception("test-error")
        net = Net()

        class FlowerClient(fl.client.NumPyClient):
            def get_parameters(self, config):
                return net.get_weights()

            def fit(self, parameters, config):
                net.set_weights(parameters)
                loss, accuracy = net.train(x, y)
                return net.get_weights(), len(x), {"train_loss": loss, "train_accuracy": accuracy}

            def evaluate(self, parameters, config):
                net.set_weights(parameters)
                loss, accuracy = net.evaluate(x_test, y_test)
                return loss, len(x_test), {"accuracy": accuracy}

        host = os.environ.get("FLMNGR_HOST", "127.0.0.1")
        port = os.environ.get("FLMNGR_PORT", "8080")
        wait_for_server(host, port)
        fl.client.start_client(server_address=f"{host}:{port}", client=FlowerClient().to_client())
        if reporter:
            reporter.send_info("Finished")
    except Exception as e:
        print(f"Error! {e!r}", file=sys.stderr)
        if manual:
            raise
        reporter.send_error(e)


if __name__ == "__main__":
    main()
