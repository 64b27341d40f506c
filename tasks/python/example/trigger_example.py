"""Trigger of the sample task: flmngr runs it on the cloud, in the task's
directory, with the accuracy that fired it as its one argument."""

import sys
import time

with open("trigger_example.log", "a") as log:
    log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} accuracy reached {sys.argv[1]}\n")
print(f"accuracy reached {sys.argv[1]}")
