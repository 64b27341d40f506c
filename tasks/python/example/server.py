"""Server of the sample task (standard library only), in the original's
layout: flmngr runs `python3 server.py <workdir> [arguments]` in the
task's directory, with FLMNGR_HOST and FLMNGR_PORT in the environment.

It waits for its clients, runs the rounds of federated averaging over a
line-delimited JSON protocol on TCP, reports every round's accuracy and
loss, fires the trigger once the accuracy reaches --trigger-accuracy, and
reports Finished (or the error).

Arguments: --rounds N (3), --min-clients N (2), --trigger-accuracy A (0.8).
"""

import argparse
import json
import os
import socket
import sys

from flmngr_reporter import TaskReporter
from task import average, evaluate, initial_weights, test_set


def parse(argv):
    p = argparse.ArgumentParser(prog="server.py")
    p.add_argument("workdir", nargs="?", default=".")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-clients", type=int, default=2)
    p.add_argument("--trigger-accuracy", type=float, default=0.8)
    p.add_argument("--wait", type=float, default=120.0, help="seconds to wait for the clients")
    return p.parse_args(argv)


class Peer:
    def __init__(self, conn):
        self.conn = conn
        self.reader = conn.makefile("r", encoding="utf-8")

    def send(self, message):
        self.conn.sendall((json.dumps(message) + "\n").encode())

    def receive(self):
        line = self.reader.readline()
        if not line:
            raise ConnectionError("a client left before the rounds were done")
        return json.loads(line)


def main():
    args = parse(sys.argv[1:])
    reporter = TaskReporter()
    try:
        host = os.environ.get("FLMNGR_HOST", "127.0.0.1")
        port = int(os.environ.get("FLMNGR_PORT", "8080"))
        listener = socket.create_server((host, port), reuse_port=False)
        listener.settimeout(args.wait)
        reporter.send_print(f"waiting for {args.min_clients} clients on {host}:{port}")
        peers = []
        while len(peers) < args.min_clients:
            conn, _ = listener.accept()
            conn.settimeout(args.wait)
            peers.append(Peer(conn))
        listener.close()
        weights, test, fired = initial_weights(), test_set(), False
        for r in range(1, args.rounds + 1):
            for p in peers:
                p.send({"round": r, "weights": weights})
            updates = []
            for p in peers:
                reply = p.receive()
                updates.append((reply["weights"], reply["n"]))
            weights = average(updates)
            acc, loss = evaluate(weights, test)
            reporter.send_stats(r, round(acc, 4), loss=round(loss, 4))
            if acc >= args.trigger_accuracy and not fired:
                fired = True
                reporter.trigger("trigger_example", str(round(acc, 4)))
        for p in peers:
            p.send({"done": True})
        reporter.send_print(f"federated averaging done: {args.rounds} rounds, accuracy {acc:.4f}")
        reporter.send_info("Finished")
    except Exception as e:  # report, never die silently
        reporter.send_error(e)
        sys.exit(1)


if __name__ == "__main__":
    main()
