// Package commands turns what operators, clients and supervisors ask for
// into events. Each command has a pure decide function, (state, command) →
// events or a typed *fault.Error, folded and table-tested without I/O. Handler
// loads an aggregate's state, decides and appends with the expected last
// sequence of the aggregate, retrying a bounded number of times when another
// writer got there first. A command that changes nothing appends nothing.
package commands
