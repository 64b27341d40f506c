// Package testkit holds what many tests of flmngr need and would otherwise
// write again: free loopback ports, the flmngr binary built once per test
// process, and waiting for a condition with a deadline. Only tests import
// it.
package testkit
