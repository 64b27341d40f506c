// Package agent is the client agent. It registers the client and reports
// its attributes when they change, sends heartbeats, follows the client's
// offers as the cloud records them (pushed, no polling) and runs the
// offered tasks: it downloads and verifies their files, runs the client
// process under taskd and records what happens. Under policy "one" it runs
// the first offered task that is not quarantined while none runs (the
// original's only policy); under "all" every offered task up to a limit.
// A task that errors is quarantined and the next offered task starts at
// once; a task that finishes frees its slot; a task the cloud stops is
// stopped. A restarted agent re-derives its state from the log.
package agent
