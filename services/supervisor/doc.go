// Package supervisor is the cloud's server supervisor. It reacts to the
// log: on a start request it materialises the task's files into a work
// directory, runs the task's server process under taskd and records what
// the process reports (server started, rounds, triggers, finished,
// errored); on a stop request it stops the process; on shutdown it stops
// every process it runs and records the runs as interrupted.
//
// Start requests come from a durable consumer shared by every cloud
// replica, so exactly one replica acts on each; recording "server
// started" expects the task's last sequence, so a replica that lost a
// race stops the process it spawned.
package supervisor
