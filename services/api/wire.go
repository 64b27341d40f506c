package api

import (
	"time"

	"github.com/flmngr/flmngr/projections"
)

// Subjects of the endpoints.
const (
	SubjectCreateTask     = "flmngr.cmd.task.create"
	SubjectUpdateTask     = "flmngr.cmd.task.update"
	SubjectDeleteTask     = "flmngr.cmd.task.delete"
	SubjectStartTask      = "flmngr.cmd.task.start"
	SubjectStopTask       = "flmngr.cmd.task.stop"
	SubjectRegisterClient = "flmngr.cmd.client.register"
	SubjectReportClient   = "flmngr.cmd.client.report"
	SubjectClientTask     = "flmngr.cmd.client.task"
	SubjectIssueKey       = "flmngr.cmd.client.key_issue"
	SubjectRevokeKey      = "flmngr.cmd.client.key_revoke"
	SubjectTaskFiles      = "flmngr.cmd.task.files"
	SubjectFilePart       = "flmngr.cmd.file.part"
	SubjectTaskUpload     = "flmngr.cmd.task.upload"
	SubjectIssueCap       = "flmngr.cmd.client.capability_issue"
	SubjectRevokeCap      = "flmngr.cmd.client.capability_revoke"

	SubjectGetTask    = "flmngr.q.task.get"
	SubjectListTasks  = "flmngr.q.task.list"
	SubjectGetClient  = "flmngr.q.client.get"
	SubjectListClient = "flmngr.q.client.list"
	SubjectTimeline   = "flmngr.q.timeline"
	SubjectStatus     = "flmngr.q.status"
	SubjectMatch      = "flmngr.q.match"
	SubjectCheckCreds = "flmngr.q.task.credentials"
	SubjectEvents     = "flmngr.q.events"
	SubjectLogs       = "flmngr.q.logs"

	SubjectRebuild = "flmngr.admin.rebuild"
)

// SourceHeader names the component a request comes from; the events it
// causes record it as their source.
const SourceHeader = "Flmngr-Source"

// RequestedAtHeader carries when the caller sent a command (RFC 3339 with
// nanoseconds); the events it causes record it.
const RequestedAtHeader = "Flmngr-Requested-At"

// IdempotencyKeyHeader carries a command's idempotency key: a command
// repeated with the same key appends its events once and is answered
// with the first one's result (see commands.WithIdempotencyKey).
const IdempotencyKeyHeader = "Flmngr-Idempotency-Key"

// EventRef names an appended event.
type EventRef struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Seq  uint64 `json:"seq"`
}

// CommandReply is the reply to every command.
type CommandReply struct {
	// Seq is the stream sequence of the last event appended (or of the
	// aggregate's last event when nothing changed).
	Seq    uint64     `json:"seq"`
	Events []EventRef `json:"events"`
	// Replayed is true when the command repeated an idempotency key
	// already acted on: nothing was appended this time.
	Replayed bool `json:"replayed,omitempty"`
}

// IssueKeyReply answers a key issue: the command's reply and the JWT the
// client connects with, with the seed only its machine has.
type IssueKeyReply struct {
	CommandReply
	JWT string `json:"jwt,omitempty"`
}

// Consistency is part of every query: the views answer only once they
// include the event at MinSeq; with Latest they wait for every event
// appended before the query arrived (the default of the CLI).
type Consistency struct {
	MinSeq uint64 `json:"min_seq,omitempty"`
	Latest bool   `json:"latest,omitempty"`
}

func (c Consistency) consistency() Consistency { return c }

// GetRequest asks for one task or client.
type GetRequest struct {
	ID string `json:"id"`
	Consistency
}

// ListTasksRequest asks for a page of tasks in creation order, optionally
// filtered: up to Limit (default 1,000, at most 10,000) after the cursor
// After (the Next of the previous page).
type ListTasksRequest struct {
	projections.TaskFilter
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
	Consistency
}

// TasksPage is a page of tasks; Next is the cursor of the next page ("":
// this is the last).
type TasksPage struct {
	Tasks []Task `json:"tasks"`
	Next  string `json:"next,omitempty"`
}

// ListClientsRequest asks for a page of clients by id, after the id After.
type ListClientsRequest struct {
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
	Consistency
}

// ClientsPage is a page of clients; Next is the After of the next page.
type ClientsPage struct {
	Clients []projections.ClientView `json:"clients"`
	Next    string                   `json:"next,omitempty"`
}

// TimelineRequest asks for a page of the timeline.
type TimelineRequest struct {
	projections.TimelineQuery
	Consistency
}

// TimelineReply is a page of the timeline.
type TimelineReply struct {
	Entries []projections.TimelineEntry `json:"entries"`
	// Next is the After of the next page; zero when this is the last.
	Next uint64 `json:"next,omitempty"`
}

// Task is a task as queries return it: the view without the password
// hash.
type Task struct {
	projections.TaskView
	HasPassword bool `json:"has_password"`
}

// StatusReply describes the deployment.
type StatusReply struct {
	StreamSeq  uint64 `json:"stream_seq"`
	ViewsSeq   uint64 `json:"views_seq"`
	Tasks      int    `json:"tasks"`
	Clients    int    `json:"clients"`
	ServerName string `json:"server,omitempty"`
	// DeadLetters counts the messages of the log that are no readable
	// event (an alarm: something wrote the stream that should not have),
	// and LastDeadLetter is the last of them.
	DeadLetters    int                     `json:"dead_letters"`
	LastDeadLetter *projections.DeadLetter `json:"last_dead_letter,omitempty"`
	// DataVolumeFree is the free space of the cloud's data volume;
	// StorageLow says it is below the watermark, when commands are
	// refused (an alarm).
	DataVolumeFree uint64 `json:"data_volume_free,omitempty"`
	StorageLow     bool   `json:"storage_low,omitempty"`
	// StreamBytes is the size of the event log on disk. SnapshotSeq and
	// SnapshotTaken describe the views' last snapshot (none: zero): a
	// rebuild reads the StreamSeq-SnapshotSeq events after it.
	// RebuildEvents and RebuildTook say what the last rebuild since the
	// cloud started read and took.
	StreamBytes   uint64     `json:"stream_bytes,omitempty"`
	SnapshotSeq   uint64     `json:"snapshot_seq,omitempty"`
	SnapshotTaken *time.Time `json:"snapshot_taken,omitempty"`
	RebuildEvents int64      `json:"rebuild_events,omitempty"`
	RebuildTook   string     `json:"rebuild_took,omitempty"`
	// RebuildEstimate is how long a rebuild would take now: the events
	// after the snapshot at the pace of the last rebuild (empty until one
	// ran since the cloud started).
	RebuildEstimate string `json:"rebuild_estimate,omitempty"`
}

// RebuildReply reports a rebuild.
type RebuildReply struct {
	Seq      uint64 `json:"seq"`
	Duration string `json:"duration"`
}

// toTask hides the password hash of a view.
func toTask(v projections.TaskView) Task {
	t := Task{TaskView: v, HasPassword: v.Spec.PasswordHash != ""}
	t.Spec.PasswordHash = ""
	return t
}

// MatchRequest asks which registered clients a criterion selects.
type MatchRequest struct {
	Criterion string `json:"criterion"`
	Consistency
}

// MatchResult is one client's result for a criterion.
type MatchResult struct {
	ClientID      string `json:"user_id"`
	Matched       bool   `json:"matched"`
	Error         string `json:"error,omitempty"`
	AttributesSeq uint64 `json:"attributes_seq"`
	// Reads are the values of the attributes the criterion reads: why the
	// client is or is not selected.
	Reads map[string]any `json:"reads,omitempty"`
}

// CredentialsRequest checks a task's download credentials; the password
// hash never leaves the query service.
type CredentialsRequest struct {
	TaskID   string `json:"task_id"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// CredentialsReply says whether they match.
type CredentialsReply struct {
	OK bool `json:"ok"`
}

// EventsRequest reads the event log: the events after a sequence, of one
// task or one client or all of them, waiting up to WaitMS for the first
// when there is none yet.
type EventsRequest struct {
	After  uint64 `json:"after,omitempty"`
	Task   string `json:"task,omitempty"`
	Client string `json:"client,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	WaitMS int    `json:"wait_ms,omitempty"`
}

// EventsReply is a page of the log; Next is the After of the next page.
type EventsReply struct {
	Events []WireEvent `json:"events"`
	Next   uint64      `json:"next"`
}

// LogsRequest reads what a task's processes printed: a run (default the
// task's current one), one origin ("server", "client-<id>") or all, after
// a sequence of the log stream, waiting up to WaitMS for the first line.
type LogsRequest struct {
	Task   string `json:"task"`
	Run    string `json:"run,omitempty"`
	Origin string `json:"origin,omitempty"`
	After  uint64 `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	WaitMS int    `json:"wait_ms,omitempty"`
}

// FilePart is one part of an upload (at most files.PartSize bytes).
type FilePart struct {
	Upload string `json:"upload"`
	Part   int    `json:"part"`
	Data   []byte `json:"data"`
}

// UploadRequest commits an upload as a file of a task.
type UploadRequest struct {
	TaskID string `json:"task_id"`
	Upload string `json:"upload"`
	Name   string `json:"name"`
	Parts  int    `json:"parts"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}
