// Package flower holds a Flower task in the original's layout: server.py,
// client.py and task.py (a NumPy-only model on synthetic data: no torch,
// no downloads), trigger_example.py, and the reporter from ../python. It
// runs under flmngr wherever flwr is installed; its test skips, saying
// so, where it is not.
package flower
