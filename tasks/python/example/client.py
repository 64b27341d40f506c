"""Client of the sample task (standard library only), in the original's
layout: flmngr runs `python3 client.py <workdir> [arguments]` in the task's
directory on each selected client, with FLMNGR_HOST, FLMNGR_PORT and
FLMNGR_CLIENT in the environment.

It trains on its own partition every round the server asks for and
reports Finished when the server says the rounds are done. The argument
test-error makes it fail on purpose (the original's experiment 2).
"""

import json
import os
import socket
import sys
import time

from flmngr_reporter import TaskReporter
from task import evaluate, partition, train


def connect(host, port, timeout=60.0):
    """Clients often start before their server listens: try until it does."""
    deadline = time.time() + timeout
    while True:
        try:
            return socket.create_connection((host, port), timeout=timeout)
        except OSError:
            if time.time() > deadline:
                raise TimeoutError(f"the server at {host}:{port} did not listen within {timeout:.0f}s")
            time.sleep(0.2)


def main():
    arguments = sys.argv[2:]
    reporter = TaskReporter()
    try:
        if "test-error" in arguments:
            raise Exception("test-error")
        client = os.environ.get("FLMNGR_CLIENT", "cli")
        host = os.environ.get("FLMNGR_HOST", "127.0.0.1")
        port = int(os.environ.get("FLMNGR_PORT", "8080"))
        data = partition(client)
        conn = connect(host, port)
        reader = conn.makefile("r", encoding="utf-8")
        for line in reader:
            message = json.loads(line)
            if message.get("done"):
                reporter.send_info("Finished")
                return
            weights = train(message["weights"], data)
            acc, _ = evaluate(weights, data)
            reporter.send_print(f"round {message['round']}: local accuracy {acc:.4f} on {len(data)} points")
            conn.sendall((json.dumps({"weights": weights, "n": len(data)}) + "\n").encode())
        raise ConnectionError("the server closed the connection before the rounds were done")
    except Exception as e:  # report, never die silently
        reporter.send_error(e)
        sys.exit(1)


if __name__ == "__main__":
    main()
