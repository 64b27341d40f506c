// Package matcher decides which running tasks each client is offered.
// It folds task and client events into memory and, whenever a task starts,
// stops or changes, or a client's attributes change, re-evaluates only
// what changed: a task's criterion against every client, or every running
// task against one client. Each affected client gets an offers event with
// its ordered task list (priority = task creation order) and, for every
// running task, the criterion, the attribute snapshot it was evaluated on
// and the result. A criterion that fails for one client hides nothing
// else. Offers never carry a password.
package matcher
