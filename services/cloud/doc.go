// Package cloud wires the cloud side of flmngr: the event log (on an
// embedded JetStream server or an external NATS deployment), the views and
// their projection runner, and the command and query endpoints. cmd/flmngr
// turns flags into a Config; tests use the same wiring.
package cloud
