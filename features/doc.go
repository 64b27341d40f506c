// Package features holds flmngr's acceptance scenarios in Gherkin and the
// godog steps that run them with `go test ./features/...`.
//
// Every scenario gets its own deployment, its data in a temp dir. With
// "a running flmngr" (most scenarios) the cloud runs inside the test
// process: cloud.Open, the wiring `flmngr up` runs, with its JetStream,
// views, supervisor and matcher. With "a running flmngr process"
// (shutdown.feature) it is a real `flmngr up` process, for what needs a
// process to signal.
//
// The steps act as an operator and clients do: the real flmngr binary
// for every operator command (`the operator runs flmngr ...`, registering
// and uploading tasks), real `flmngr client` agent processes for clients,
// and real task server and client processes. What reaches past those
// edges does so on purpose and says so in its step: the assertions read
// the views and the event log, through the NATS API or, to compare every
// view byte for byte and search every stored event, from the in-process
// cloud itself; and a few steps break things as an attacker or a crash
// would (tampering with a stored file using the cloud's trust material,
// signalling a process).
package features
