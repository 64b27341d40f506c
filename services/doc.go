// Package services groups flmngr's long-lived components. Each lives in a
// subpackage named after what it does: api (the command and query
// endpoints on NATS), cloud (the wiring of the cloud side).
package services
