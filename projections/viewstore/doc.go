// Package viewstore runs flmngr's projections over the event log and keeps the
// views in a Badger database. Each batch of events is applied in one
// transaction together with the last applied stream sequence (the
// checkpoint), so a restart resumes exactly after the last committed event
// and no event is applied twice. Rebuild drops every view and replays the
// log from its first event, writing in batches.
package viewstore
