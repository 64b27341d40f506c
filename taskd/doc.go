// Package taskd supervises one task process, the way nomad's task runner
// does: it starts the child with its argv, working directory and
// environment in a process group of its own; reads stdout and stderr on
// separate goroutines with a bounded line size; parses the report protocol
// (JSON lines of type info, print, error, model and trigger) and hands
// every other line on as a log line; stops the child with a signal, a grace
// period and then SIGKILL to the whole group, with a bounded wait; and
// reports the exit (code, signal, duration, outcome) exactly once.
//
// A process that exits without reporting "Finished" or an error is a
// failure: its outcome is Unreported.
package taskd
