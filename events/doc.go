// Package events holds flmngr's closed event vocabulary: the envelope every
// event travels in, the payload of each event type and the codec that turns
// them into bytes and back.
//
// Wire names such as "task.created.v1" are data. They are never derived from
// Go type names and are never renamed, reordered or reused; a changed payload
// becomes a new version. Decoding an unknown name is an error, so a consumer
// that meets an event it does not understand fails loudly.
//
// The package does no I/O. The JetStream adapter lives in events/eventlog.
package events
