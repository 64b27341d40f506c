// Package gateway is flmngr's HTTP edge: the REST API under /api/v1 with
// Server-Sent Events streams that resume from a sequence, the original
// system's endpoints (POST /<rpc name>, /upload_files, /download/...) so its
// scripts and pages keep working, the web console, and /metrics for
// Prometheus. It talks to the services over NATS like any other client, so
// every call is bounded in time even when a service is down, and it is the
// only place that maps error kinds to HTTP statuses.
//
// Mutating calls need the admin token as a Bearer header, or the
// console's session cookie (from a login with the token) on a request
// from the gateway's own origin with a JSON or multipart body; reads need
// one of them too unless the gateway was started with open reads.
package gateway
