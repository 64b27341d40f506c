// Package tasks holds sample federated-learning tasks that operators copy:
// python/ has the reporter a Python task imports to speak flmngr's report
// protocol (a drop-in for the original TaskReporter).
package tasks
