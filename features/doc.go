// Package features holds flmngr's acceptance scenarios in Gherkin and the
// godog steps that run them with `go test ./features/...`. Every scenario
// gets its own embedded deployment (JetStream and views in a temp dir) and
// drives it only through its public edges: the real flmngr binary and the
// NATS endpoints. Assertions read the views and the event log.
package features
