package projections

import "slices"

// The query contract: what the views can be asked, whatever stores them.

// TaskFilter selects tasks; empty fields select everything.
type TaskFilter struct {
	Status string `json:"status,omitempty"`
	Tag    string `json:"tag,omitempty"`
}

// Match says whether the filter selects v.
func (f TaskFilter) Match(v *TaskView) bool {
	if f.Status != "" && string(v.Status) != f.Status && !(f.Status == "running" && v.Running) {
		return false
	}
	return f.Tag == "" || slices.Contains(v.Spec.Tags, f.Tag)
}

// TimelineQuery selects a page of the timeline: every event, or those of
// one task (including what clients did with it) or one client.
type TimelineQuery struct {
	Task   string `json:"task,omitempty"`
	Client string `json:"client,omitempty"`
	// After is the sequence the page starts after.
	After uint64 `json:"after,omitempty"`
	// Limit bounds the page (default 100, at most 10,000).
	Limit int `json:"limit,omitempty"`
}

// Page bounds.
const (
	DefaultPage = 1000
	MaxPage     = 10_000
)

// PageLimit is the page size a query asking for limit gets.
func PageLimit(limit int) int {
	if limit <= 0 {
		return DefaultPage
	}
	return min(limit, MaxPage)
}

// DeadLetter is a message of the log that is not a readable event
// (malformed, or of a type this version does not know). The views record
// it and go on: no single message can stop them, nor the cloud from
// starting.
type DeadLetter struct {
	Seq   uint64 `json:"seq"`
	Error string `json:"error"`
	Size  int    `json:"size"`
	// Head is the start of the message, as text.
	Head string `json:"head"`
}
