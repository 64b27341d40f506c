// Package projections holds the read side of flmngr: pure folds that turn
// the event log into views of tasks, clients (the original's users) and
// the timeline of every event. Folds take time from the event envelope and
// never read the clock, so replaying the log always yields the same views.
// projections/viewstore runs them over the log and stores the views.
package projections
