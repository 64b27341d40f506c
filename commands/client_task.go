package commands

import (
	"slices"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// Kinds of ReportClientTask.
const (
	ClientTaskDownloaded  = "downloaded"
	ClientTaskStarted     = "started"
	ClientTaskFinished    = "finished"
	ClientTaskErrored     = "errored"
	ClientTaskStopped     = "stopped"
	ClientTaskInterrupted = "interrupted"
	ClientTaskQuarantined = "quarantined"
	ClientTaskRunning     = "running"
	ClientTaskExited      = "exited"
	ClientTaskRefused     = "refused"
	// ClientTaskAwaitingApproval and ClientTaskApproved: the site holds
	// back a run until it approves its statement (Statement), and
	// approved it.
	ClientTaskAwaitingApproval = "awaiting_approval"
	ClientTaskApproved         = "approved"
	// ClientTaskSuperNodeKey reports the public key of the SuperNode key
	// pair the client made for a Flower App run it is offered.
	ClientTaskSuperNodeKey = "supernode_key"
)

// ReportClientTask is what a client's agent reports about a task it runs.
type ReportClientTask struct {
	ClientID  string             `json:"user_id"`
	Kind      string             `json:"kind"`
	TaskID    string             `json:"task_id"`
	Run       string             `json:"run"`
	SpecSeq   uint64             `json:"spec_seq,omitempty"`
	PID       int                `json:"pid,omitempty"`
	Command   []string           `json:"command,omitempty"`
	Files     []events.FileRef   `json:"files,omitempty"`
	Duration  time.Duration      `json:"duration_ns,omitempty"`
	Exception string             `json:"exception,omitempty"`
	Exit      *events.ExitStatus `json:"exit,omitempty"`
	Reason    string             `json:"reason,omitempty"`
	// Statement is the SHA-256 of the task statement a site approves
	// (events.StatementDigest), and Signers the keys whose signatures
	// over it verify.
	Statement string   `json:"statement_sha256,omitempty"`
	Signers   []string `json:"signers,omitempty"`
	PublicKey string   `json:"public_key,omitempty"`
}

func (c ReportClientTask) Aggregate() events.Aggregate { return events.Client(c.ClientID) }

func (c ReportClientTask) decide(s ClientState) ([]events.Payload, error) {
	if err := validateID("user_id", c.ClientID); err != nil {
		return nil, err
	}
	if err := validateID("task_id", c.TaskID); err != nil {
		return nil, err
	}
	if c.Run == "" || len(c.Run) > 64 {
		return nil, fault.Invalid("run", "run must be 1-64 characters")
	}
	if !s.Exists {
		return nil, fault.NotFound("client %s not found", c.ClientID)
	}
	running := s.IsRunning(c.TaskID, c.Run)
	var p events.Payload
	switch c.Kind {
	case ClientTaskDownloaded:
		p = &events.ClientTaskDownloaded{TaskID: c.TaskID, Run: c.Run, Files: c.Files, Duration: c.Duration}
	case ClientTaskStarted:
		if running {
			return nil, nil
		}
		p = &events.ClientTaskStarted{TaskID: c.TaskID, Run: c.Run, PID: c.PID, Command: c.Command}
	case ClientTaskFinished:
		if !running {
			return nil, nil
		}
		p = &events.ClientTaskFinished{TaskID: c.TaskID, Run: c.Run}
	case ClientTaskErrored:
		p = &events.ClientTaskErrored{TaskID: c.TaskID, Run: c.Run, Exception: c.Exception, Exit: c.Exit}
	case ClientTaskStopped:
		if !running {
			return nil, nil
		}
		p = &events.ClientTaskStopped{TaskID: c.TaskID, Run: c.Run, Reason: c.Reason}
	case ClientTaskInterrupted:
		if !running {
			return nil, nil
		}
		p = &events.ClientTaskInterrupted{TaskID: c.TaskID, Run: c.Run, Reason: c.Reason}
	case ClientTaskRunning:
		p = &events.ClientTaskRunning{TaskID: c.TaskID, Run: c.Run}
	case ClientTaskExited:
		var st events.ExitStatus
		if c.Exit != nil {
			st = *c.Exit
		}
		p = &events.ClientTaskExited{TaskID: c.TaskID, Run: c.Run, ExitStatus: st}
	case ClientTaskRefused:
		p = &events.ClientTaskRefused{TaskID: c.TaskID, Run: c.Run, SpecSeq: c.SpecSeq, Reason: c.Reason}
	case ClientTaskAwaitingApproval:
		if len(c.Statement) != 64 {
			return nil, fault.Invalid("statement_sha256", "statement_sha256 must be 64 hex digits")
		}
		if a, ok := s.AwaitingApproval(c.TaskID, c.Run); ok && a.Statement == c.Statement {
			return nil, nil
		}
		p = &events.ClientTaskAwaitingApproval{TaskID: c.TaskID, Run: c.Run, SpecSeq: c.SpecSeq, Statement: c.Statement, Files: c.Files, Signers: c.Signers}
	case ClientTaskApproved:
		if a, ok := s.AwaitingApproval(c.TaskID, c.Run); !ok || a.Statement != c.Statement {
			return nil, nil
		}
		p = &events.ClientTaskApproved{TaskID: c.TaskID, Run: c.Run, Statement: c.Statement}
	case ClientTaskSuperNodeKey:
		// Only for a run the client is offered, and only a public key.
		if o, ok := s.Offered(c.TaskID); !ok || o.Run != c.Run || o.SuperLinkCA == "" {
			return nil, fault.Conflict("client %s is not offered run %s of Flower App task %s", c.ClientID, c.Run, c.TaskID)
		}
		key, err := SuperNodePublicKey(c.PublicKey)
		if err != nil {
			return nil, err
		}
		p = &events.ClientSuperNodeKeyReported{TaskID: c.TaskID, Run: c.Run, PublicKey: key}
	case ClientTaskQuarantined:
		q := Quarantine{TaskID: c.TaskID, Run: c.Run, SpecSeq: c.SpecSeq}
		if s.IsQuarantined(events.Offer{TaskID: q.TaskID, Run: q.Run, SpecSeq: q.SpecSeq}) {
			return nil, nil
		}
		p = &events.ClientTaskQuarantined{TaskID: c.TaskID, Run: c.Run, SpecSeq: c.SpecSeq, Reason: c.Reason}
	default:
		return nil, fault.Invalid("kind", "unknown kind %q (downloaded, started, running, finished, errored, stopped, interrupted, exited, quarantined, refused, awaiting_approval, approved, supernode_key)", c.Kind)
	}
	return []events.Payload{p}, nil
}

// RecordOffers records the running tasks a client matches. The matcher
// sends it; it appends nothing when the offers did not change.
type RecordOffers struct {
	ClientID  string
	Offers    []events.Offer
	Decisions []events.Decision
	Cause     string
	Finished  []string
}

func (c RecordOffers) Aggregate() events.Aggregate { return events.Client(c.ClientID) }

func (c RecordOffers) decide(s ClientState) ([]events.Payload, error) {
	if !s.Exists {
		return nil, fault.NotFound("client %s not found", c.ClientID)
	}
	if slices.EqualFunc(s.Offers, c.Offers, OfferEqual) {
		return nil, nil
	}
	offers := c.Offers
	if offers == nil {
		offers = []events.Offer{}
	}
	return []events.Payload{&events.ClientOffersChanged{Offers: offers, Decisions: c.Decisions, Cause: c.Cause, Finished: c.Finished}}, nil
}

// OfferEqual compares two offers field by field.
func OfferEqual(a, b events.Offer) bool {
	return a.TaskID == b.TaskID && a.Run == b.Run && a.SpecSeq == b.SpecSeq && a.Host == b.Host && a.Port == b.Port &&
		equalPtr(a.ClientArguments, b.ClientArguments) && slices.Equal(a.Tags, b.Tags) && slices.Equal(a.ClientCommand, b.ClientCommand) &&
		slices.Equal(a.Files, b.Files) && a.SuperLinkCA == b.SuperLinkCA
}

// RecordPresence records that the cloud stopped or started hearing a
// client's heartbeats again.
type RecordPresence struct {
	ClientID string
	Online   bool
	LastSeen time.Time
	Gap      time.Duration
}

func (c RecordPresence) Aggregate() events.Aggregate { return events.Client(c.ClientID) }

func (c RecordPresence) decide(s ClientState) ([]events.Payload, error) {
	if !s.Exists {
		return nil, fault.NotFound("client %s not found", c.ClientID)
	}
	switch {
	case c.Online && !s.Online:
		return []events.Payload{&events.ClientReconnected{Gap: c.Gap}}, nil
	case !c.Online && s.Online:
		return []events.Payload{&events.ClientDisconnected{LastSeen: c.LastSeen}}, nil
	}
	return nil, nil
}
