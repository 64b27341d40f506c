// Package flowerapp runs a Flower App under flmngr the way Flower deploys
// it today: the cloud's side supervises a SuperLink for the task and
// submits the run with the flwr CLI, following it to its end; each
// matching client's side supervises a SuperNode, restarting it whenever
// it exits. Both sides speak flmngr's report protocol on stdout (steps,
// rounds, Started, Finished, errors), so the server supervisor and the
// agent handle them like any task: events, quarantine, failover.
//
// Flower's commands (flower-superlink, flower-supernode, flwr and the
// processes they start by name) must be on PATH. The app's Python
// dependencies must be importable: Flower does not install them.
package flowerapp
