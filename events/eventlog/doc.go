// Package jetstream is the adapter between flmngr's event vocabulary and a
// NATS JetStream stream: it runs an embedded nats-server when asked to,
// creates the event stream idempotently, appends events with their id as
// Nats-Msg-Id and an expected last sequence per aggregate, replays an
// aggregate or the whole stream and runs ordered and durable consumers.
//
// Each event is stored on the subject <prefix>.<kind>.<id>.<name>, where
// name is the wire type without its kind (task.created.v1 of task 4fe5 is
// flmngr.ev.task.4fe5.created.v1), so consumers filter by aggregate or by
// event type on the server.
package eventlog
