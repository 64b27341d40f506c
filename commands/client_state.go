package commands

import (
	"slices"
	"time"

	"github.com/flmngr/flmngr/events"
)

// TaskRun names one run of a task.
type TaskRun struct {
	TaskID string `json:"task_id"`
	Run    string `json:"run"`
}

// Quarantine is a task run a client will not run again because it failed
// there. A new run or a new spec of the task lifts it.
type Quarantine struct {
	TaskID  string `json:"task_id"`
	Run     string `json:"run"`
	SpecSeq uint64 `json:"spec_seq"`
	Reason  string `json:"reason"`
}

// Covers reports whether the quarantine applies to an offer.
func (q Quarantine) Covers(o events.Offer) bool {
	return q.TaskID == o.TaskID && q.Run == o.Run && q.SpecSeq == o.SpecSeq
}

// RunningTask is a task a client runs now.
type RunningTask struct {
	TaskRun
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

// ClientState is what the client commands decide on, folded from the
// client's events.
type ClientState struct {
	Exists     bool                    `json:"-"`
	Attributes events.ClientAttributes `json:"attributes"`
	// AttributesSeq is the stream sequence of the last attribute change.
	AttributesSeq uint64    `json:"attributes_seq"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Offers are the running tasks the client matches, by priority, and
	// Decisions why each running task was or was not offered.
	Offers    []events.Offer    `json:"offers"`
	Decisions []events.Decision `json:"decisions,omitempty"`
	// Running are the tasks the client's agent runs now.
	Running []RunningTask `json:"running"`
	// Done are the runs the client finished; it does not run them again.
	Done []TaskRun `json:"done,omitempty"`
	// Quarantined are the runs that failed on this client.
	Quarantined []Quarantine `json:"quarantined"`
	// Online is true while the client's agent is heard from: from its
	// first report until the cloud misses its heartbeats, and again when
	// it is heard from. A client registered by an operator and never
	// connected is not online, and SeenAt is zero: never seen.
	Online bool `json:"online"`
	// SeenAt is when the client's agent was last heard from, as far as
	// the log tells (its reports, or the last heartbeat before it went
	// silent).
	SeenAt time.Time `json:"seen_at,omitzero"`
	// PublicKey is the NKey the client's agent connects with ("": none
	// issued, or revoked).
	PublicKey string `json:"public_key,omitempty"`
	// Capabilities are the live download capabilities minted for the
	// client: each for a run it is offered now (see Capability).
	Capabilities []DownloadCapability `json:"capabilities,omitempty"`
	// Awaiting are the runs the client's site holds back until it
	// approves them (flmngr client --approval).
	Awaiting []AwaitingApproval `json:"awaiting_approval,omitempty"`
}

// AwaitingApproval is a task run a client's site has not approved yet:
// the statement it would approve and since when it waits.
type AwaitingApproval struct {
	TaskRun
	SpecSeq   uint64           `json:"spec_seq"`
	Statement string           `json:"statement_sha256"`
	Files     []events.FileRef `json:"files"`
	Signers   []string         `json:"signers,omitempty"`
	Since     time.Time        `json:"since"`
}

// AwaitingApproval returns the client's wait for its site's approval of
// a task run.
func (s *ClientState) AwaitingApproval(task, run string) (AwaitingApproval, bool) {
	i := slices.IndexFunc(s.Awaiting, func(a AwaitingApproval) bool { return a.TaskID == task && a.Run == run })
	if i < 0 {
		return AwaitingApproval{}, false
	}
	return s.Awaiting[i], true
}

// notAwaiting drops the wait for a run's approval.
func (s *ClientState) notAwaiting(task, run string) []AwaitingApproval {
	out := slices.DeleteFunc(slices.Clone(s.Awaiting), func(a AwaitingApproval) bool { return a.TaskID == task && a.Run == run })
	if len(out) == 0 {
		return nil
	}
	return out
}

// DownloadCapability is a capability to download a task run's files,
// minted for one client: its id, what it opens and the SHA-256 of its
// secret (never the secret).
type DownloadCapability struct {
	ID      string `json:"id"`
	TaskID  string `json:"task_id"`
	Run     string `json:"run"`
	SpecSeq uint64 `json:"spec_seq"`
	SHA256  string `json:"sha256"`
}

// maxCapabilities bounds the live capabilities of one client for one
// task (each gateway replica mints its own; the oldest goes first).
const maxCapabilities = 4

// Capability returns the client's live capability id for a task.
func (s *ClientState) Capability(task, id string) (DownloadCapability, bool) {
	i := slices.IndexFunc(s.Capabilities, func(c DownloadCapability) bool { return c.TaskID == task && c.ID == id })
	if i < 0 {
		return DownloadCapability{}, false
	}
	return s.Capabilities[i], true
}

// Offered returns the client's offer of a task.
func (s *ClientState) Offered(task string) (events.Offer, bool) {
	i := slices.IndexFunc(s.Offers, func(o events.Offer) bool { return o.TaskID == task })
	if i < 0 {
		return events.Offer{}, false
	}
	return s.Offers[i], true
}

// opens reports whether a capability is for an offer.
func (c DownloadCapability) opens(o events.Offer) bool {
	return c.TaskID == o.TaskID && c.Run == o.Run && c.SpecSeq == o.SpecSeq
}

// Live reports whether a capability opens the client's current offer of
// its task: the run has not ended and the task not changed.
func (s *ClientState) Live(c DownloadCapability) bool {
	o, ok := s.Offered(c.TaskID)
	return ok && c.opens(o)
}

// maxDone bounds how many finished and quarantined runs a client
// remembers.
const maxDone = 256

// Apply folds one event of the client into the state.
func (s *ClientState) Apply(e events.Envelope) {
	switch p := e.Event.(type) {
	case *events.ClientRegistered:
		*s = ClientState{Exists: true, Attributes: p.Attributes, AttributesSeq: e.Seq, CreatedAt: e.Time, UpdatedAt: e.Time, PublicKey: s.PublicKey,
			SeenAt: s.SeenAt}
	case *events.ClientKeyIssued:
		s.PublicKey = p.PublicKey
	case *events.ClientKeyRevoked:
		s.PublicKey = ""
	case *events.ClientInfoReported:
		s.Attributes, s.AttributesSeq, s.UpdatedAt = p.Attributes, e.Seq, e.Time
	case *events.ClientOffersChanged:
		s.Offers, s.Decisions = p.Offers, p.Decisions
		// A run no longer offered waits for nothing.
		for _, a := range s.Awaiting {
			if !slices.ContainsFunc(p.Offers, func(o events.Offer) bool { return o.TaskID == a.TaskID && o.Run == a.Run }) {
				s.Awaiting = s.notAwaiting(a.TaskID, a.Run)
			}
		}
		// A capability lapses with the offer it was minted for.
		s.Capabilities = slices.DeleteFunc(slices.Clone(s.Capabilities), func(c DownloadCapability) bool { return !s.Live(c) })
	case *events.ClientDownloadCapabilityIssued:
		c := DownloadCapability{ID: p.ID, TaskID: p.TaskID, Run: p.Run, SpecSeq: p.SpecSeq, SHA256: p.SHA256}
		caps := slices.DeleteFunc(slices.Clone(s.Capabilities), func(o DownloadCapability) bool {
			return o.TaskID == p.TaskID && !o.opens(events.Offer{TaskID: c.TaskID, Run: c.Run, SpecSeq: c.SpecSeq})
		})
		if n := countTask(caps, p.TaskID); n >= maxCapabilities {
			i := slices.IndexFunc(caps, func(o DownloadCapability) bool { return o.TaskID == p.TaskID })
			caps = slices.Delete(caps, i, i+1)
		}
		s.Capabilities = append(caps, c)
	case *events.ClientDownloadCapabilityRevoked:
		s.Capabilities = slices.DeleteFunc(slices.Clone(s.Capabilities), func(c DownloadCapability) bool {
			return c.TaskID == p.TaskID && (p.ID == "" || c.ID == p.ID)
		})
	case *events.ClientTaskAwaitingApproval:
		if w := s.notAwaiting(p.TaskID, p.Run); len(w) < maxDone {
			s.Awaiting = append(w, AwaitingApproval{TaskRun: TaskRun{p.TaskID, p.Run}, SpecSeq: p.SpecSeq,
				Statement: p.Statement, Files: p.Files, Signers: p.Signers, Since: e.Time})
		}
	case *events.ClientTaskApproved:
		s.Awaiting = s.notAwaiting(p.TaskID, p.Run)
	case *events.ClientTaskRefused:
		s.Awaiting = s.notAwaiting(p.TaskID, p.Run)
	case *events.ClientTaskStarted:
		s.Awaiting = s.notAwaiting(p.TaskID, p.Run)
		s.Running = append(s.without(p.TaskID, p.Run), RunningTask{TaskRun: TaskRun{p.TaskID, p.Run}, PID: p.PID, Started: e.Time})
	case *events.ClientTaskFinished:
		s.Running = s.without(p.TaskID, p.Run)
		s.Done = append(s.Done, TaskRun{p.TaskID, p.Run})
		if len(s.Done) > maxDone {
			s.Done = s.Done[len(s.Done)-maxDone:]
		}
	case *events.ClientTaskErrored:
		s.Running = s.without(p.TaskID, p.Run)
	case *events.ClientTaskStopped:
		s.Running = s.without(p.TaskID, p.Run)
	case *events.ClientTaskInterrupted:
		s.Running = s.without(p.TaskID, p.Run)
	case *events.ClientTaskQuarantined:
		s.Quarantined = append(s.Quarantined, Quarantine{TaskID: p.TaskID, Run: p.Run, SpecSeq: p.SpecSeq, Reason: p.Reason})
		if len(s.Quarantined) > maxDone {
			s.Quarantined = s.Quarantined[len(s.Quarantined)-maxDone:]
		}
	case *events.ClientDisconnected:
		s.Online = false
		s.SeenAt = later(s.SeenAt, p.LastSeen)
	case *events.ClientReconnected:
		s.Online, s.SeenAt = true, later(s.SeenAt, e.Time)
	}
	if e.Source == AgentSource(e.Aggregate.ID) {
		// The agent's first word brings the client online; after that,
		// presence says when it goes silent and comes back.
		if s.SeenAt.IsZero() {
			s.Online = true
		}
		s.SeenAt = later(s.SeenAt, e.Time)
	}
}

func countTask(caps []DownloadCapability, task string) int {
	n := 0
	for _, c := range caps {
		if c.TaskID == task {
			n++
		}
	}
	return n
}

// AgentSource is the source of the events client id's own agent causes.
func AgentSource(id string) string { return "agent/" + id }

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func (s *ClientState) without(task, run string) []RunningTask {
	return slices.DeleteFunc(slices.Clone(s.Running), func(r RunningTask) bool { return r.TaskID == task && r.Run == run })
}

// IsRunning reports whether the client runs a task run.
func (s *ClientState) IsRunning(task, run string) bool {
	return slices.ContainsFunc(s.Running, func(r RunningTask) bool { return r.TaskID == task && r.Run == run })
}

// IsDone reports whether the client finished a task run.
func (s *ClientState) IsDone(task, run string) bool {
	return slices.Contains(s.Done, TaskRun{task, run})
}

// IsQuarantined reports whether an offer is quarantined on the client.
func (s *ClientState) IsQuarantined(o events.Offer) bool {
	return slices.ContainsFunc(s.Quarantined, func(q Quarantine) bool { return q.Covers(o) })
}
