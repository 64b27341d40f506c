"""Report protocol helper for flmngr tasks (standard library only).

A task process tells its supervisor what happens by printing one JSON
object per line on stdout; every other line is kept as a log line. This
module is a drop-in for the original TaskReporter: change

    from task_daemon_lib.task_reporter import TaskReporter

to

    from flmngr_reporter import TaskReporter

and the task runs under flmngr unchanged.
"""

import json
import sys

__all__ = ["TaskReporter"]


class TaskReporter:
    """Prints report lines. The constructor reports "Started"."""

    def __init__(self, stream=None):
        self._out = stream if stream is not None else sys.stdout
        self.send_info("Started")

    def _send(self, message):
        self._out.write(json.dumps(message) + "\n")
        self._out.flush()

    def send_info(self, info):
        """An informative message; "Finished" ends the task successfully."""
        self._send({"type": "info", "info": str(info)})

    def send_print(self, message):
        """Text worth showing in the task's log."""
        self._send({"type": "print", "message": str(message)})

    def send_error(self, exception):
        """The task failed: the supervisor stops it (a client quarantines it
        and moves on to its next task)."""
        self._send({"type": "error", "exception": str(exception)})

    def send_stats(self, round, acc, **metrics):
        """A round completed with its accuracy (and any other metrics)."""
        message = {"type": "model", "round": str(round), "acc": str(acc)}
        for key, value in metrics.items():
            message[key] = str(value)
        self._send(message)

    def trigger(self, trigger_name, trigger_arguments):
        """Ask the cloud to run the task's trigger with ONE argument."""
        self._send({
            "type": "trigger",
            "trigger_name": str(trigger_name),
            "trigger_arguments": str(trigger_arguments),
        })
