// Package experiments reproduces the original system's experiments 1 and
// 2 on flmngr and measures them from the event log alone: every timing is
// a projection of recorded events (their times, and for commands the time
// the caller sent them), so any recorded timeline can be replayed into the
// same figures without running anything.
//
// Experiment 1: the cloud is up; an operator creates and starts a task;
// client agents come up, register, are offered the task, download it, run
// it and finish. Experiment 2: tasks E (client argument test-error) and C
// are running; a client starts E, E errors, the client quarantines it and
// fails over to C at once.
package experiments
