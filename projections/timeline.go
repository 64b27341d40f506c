package projections

import (
	"fmt"
	"strings"
	"time"

	"github.com/flmngr/flmngr/events"
)

// TimelineEntry is one event as the timeline shows it.
type TimelineEntry struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Sent is when the component that caused the event sent it (its
	// requested time), when it said: Time minus Sent is the hop into the
	// log.
	Sent      *time.Time `json:"sent,omitempty"`
	Source    string     `json:"source"`
	Kind      string     `json:"kind"`
	Aggregate string     `json:"aggregate"`
	Type      string     `json:"type"`
	EventID   string     `json:"event_id"`
	Run       string     `json:"run,omitempty"`
	Task      string     `json:"task,omitempty"`
	Detail    string     `json:"detail,omitempty"`
}

// Entry turns an event into its timeline entry.
func Entry(e events.Envelope) TimelineEntry {
	t := TimelineEntry{
		Seq: e.Seq, Time: e.Time, Sent: e.RequestedAt, Source: e.Source, Kind: e.Aggregate.Kind,
		Aggregate: e.Aggregate.ID, Type: e.Type, EventID: e.ID,
	}
	if e.Aggregate.Kind == events.KindTask {
		t.Task = e.Aggregate.ID
	}
	t.Run, t.Detail = describe(e.Event)
	if task, _, ok := events.TaskRunOf(e.Event); ok {
		t.Task = task
	}
	return t
}

// describe gives an event's run, if it has one, and a one-line summary.
func describe(p events.Payload) (run, detail string) {
	switch p := p.(type) {
	case *events.TaskCreated:
		return "", fmt.Sprintf("%s:%d criterion %q", p.Host, p.Port, p.SelectionCriteria)
	case *events.TaskUpdated:
		return "", "changed " + strings.Join(p.Changed, ", ")
	case *events.TaskFilesUploaded:
		names := make([]string, len(p.Files))
		for i, f := range p.Files {
			names[i] = f.Name
		}
		return "", strings.Join(names, ", ")
	case *events.TaskStartRequested:
		return p.Run, ""
	case *events.TaskServerStarted:
		return p.Run, fmt.Sprintf("pid %d", p.PID)
	case *events.TaskServerExited:
		return p.Run, exitDetail(p.ExitStatus)
	case *events.TaskRoundCompleted:
		return p.Run, fmt.Sprintf("round %d%s", p.Round, metricsDetail(p.Metrics))
	case *events.TaskTriggerFired:
		return p.Run, fmt.Sprintf("%s(%q)", p.Name, p.Arguments)
	case *events.TaskTriggerRan:
		return p.Run, fmt.Sprintf("%s exit %d %s", p.Name, p.Code, p.Error)
	case *events.TaskFinished:
		return p.Run, ""
	case *events.TaskErrored:
		return p.Run, p.Exception
	case *events.TaskStopRequested:
		return p.Run, ""
	case *events.TaskStopped:
		return p.Run, ""
	case *events.TaskInterrupted:
		return p.Run, p.Reason
	case *events.TaskStepReported:
		return p.Run, strings.TrimSpace(p.Step + " " + p.Detail)
	case *events.TaskSuperLinkCAIssued:
		return p.Run, ""
	case *events.ClientSuperNodeKeyReported:
		return p.Run, p.PublicKey
	case *events.ClientRegistered:
		return "", fmt.Sprintf("sensors %v data_qnt %d", p.Attributes.Sensors, p.Attributes.DataQnt)
	case *events.ClientInfoReported:
		return "", "changed " + strings.Join(p.Changed, ", ")
	case *events.ClientOffersChanged:
		ids := make([]string, len(p.Offers))
		for i, o := range p.Offers {
			ids[i] = o.TaskID
		}
		return "", fmt.Sprintf("offers [%s] after %s", strings.Join(ids, ", "), p.Cause)
	case *events.ClientTaskDownloaded:
		return p.Run, fmt.Sprintf("%d files in %s", len(p.Files), p.Duration)
	case *events.ClientTaskStarted:
		return p.Run, fmt.Sprintf("pid %d", p.PID)
	case *events.ClientTaskFinished:
		return p.Run, ""
	case *events.ClientTaskRunning:
		return p.Run, ""
	case *events.ClientTaskExited:
		return p.Run, exitDetail(p.ExitStatus)
	case *events.ClientTaskErrored:
		return p.Run, p.Exception
	case *events.ClientTaskStopped:
		return p.Run, p.Reason
	case *events.ClientTaskInterrupted:
		return p.Run, p.Reason
	case *events.ClientTaskQuarantined:
		return p.Run, p.Reason
	case *events.ClientDisconnected:
		return "", "last seen " + p.LastSeen.Format(time.RFC3339)
	case *events.ClientReconnected:
		return "", "after " + p.Gap.String()
	case *events.ClientKeyIssued:
		if p.Enrolment != "" {
			return "", "key " + p.PublicKey + " enrolled with token " + p.Enrolment
		}
		return "", "key " + p.PublicKey
	case *events.ClientTaskRefused:
		return p.Run, p.Reason
	case *events.ClientTaskAwaitingApproval:
		return p.Run, "awaiting the site's approval of statement sha256:" + p.Statement
	case *events.ClientTaskApproved:
		return p.Run, "the site approved statement sha256:" + p.Statement
	case *events.TaskSigned:
		return "", "signed by " + p.PublicKey
	case *events.EnrolmentCreated:
		return "", fmt.Sprintf("%d uses until %s", p.Uses, p.ExpiresAt.Format(time.RFC3339))
	case *events.EnrolmentUsed:
		return "", fmt.Sprintf("client %s enrolled (%d uses left)", p.ClientID, p.Remaining)
	case *events.ClientKeyRevoked:
		if p.Reason != "" {
			return "", "key " + p.PublicKey + ": " + p.Reason
		}
		return "", "key " + p.PublicKey
	case *events.ClientDownloadCapabilityIssued:
		return p.Run, "download capability " + p.ID + " for task " + p.TaskID
	case *events.ClientDownloadCapabilityRevoked:
		what := "download capabilities for task " + p.TaskID
		if p.ID != "" {
			what = "download capability " + p.ID + " for task " + p.TaskID
		}
		if p.Reason != "" {
			what += ": " + p.Reason
		}
		return "", what
	}
	return "", ""
}

func exitDetail(s events.ExitStatus) string {
	if s.Signal != "" {
		return fmt.Sprintf("signal %s after %s", s.Signal, s.Duration)
	}
	return fmt.Sprintf("exit %d after %s", s.Code, s.Duration)
}

func metricsDetail(m map[string]float64) string {
	if v, ok := m["accuracy"]; ok {
		return fmt.Sprintf(" accuracy %.4f", v)
	}
	return ""
}
