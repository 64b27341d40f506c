// Package api serves flmngr's commands and queries as NATS micro services,
// so that any process (the CLI, the gateway, a script with the nats tool)
// can drive the system, discover it ($SRV.INFO) and read its statistics
// ($SRV.STATS). Client is the typed caller the CLI and tests use.
//
// Requests and replies are JSON. A failed request gets the micro error
// headers (Nats-Service-Error-Code carries the error kind, such as
// "invalid" or "not_found") and a JSON body {"kind","message","field"}.
package api
