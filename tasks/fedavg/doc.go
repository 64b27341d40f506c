// Package fedavg is a federated-learning task that needs nothing but this
// repository: softmax regression on MNIST trained by federated averaging.
// The server listens on the task's host:port, waits for its minimum number
// of clients, runs its rounds (each client trains on its own partition,
// the server averages the models weighted by example counts, as Flower's
// FedAvg does, and evaluates on the test set), reports each round with a
// model line and ends with "Finished". Every failure (too few clients in
// time, an unreachable server, a late client) ends with an error line.
//
// `flmngr fl server` and `flmngr fl client` run the two roles.
package fedavg
