package commands

import (
	"slices"
	"strings"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// TaskStatus is where a task is in its life cycle.
type TaskStatus string

// Task statuses. A task is active (the original's running=true) while start
// is requested or its server runs.
const (
	StatusIdle           TaskStatus = "idle"
	StatusStartRequested TaskStatus = "start_requested"
	StatusRunning        TaskStatus = "running"
	StatusStopRequested  TaskStatus = "stop_requested"
	StatusStopped        TaskStatus = "stopped"
	StatusFinished       TaskStatus = "finished"
	StatusErrored        TaskStatus = "errored"
	StatusInterrupted    TaskStatus = "interrupted"
)

// Statuses lists every status, in life-cycle order.
var Statuses = []TaskStatus{StatusIdle, StatusStartRequested, StatusRunning, StatusStopRequested, StatusStopped, StatusFinished, StatusErrored, StatusInterrupted}

// ValidateStatus refuses a status filter that names no status.
func ValidateStatus(field, s string) error {
	if s == "" {
		return nil
	}
	names := make([]string, len(Statuses))
	for i, st := range Statuses {
		if string(st) == s {
			return nil
		}
		names[i] = string(st)
	}
	return fault.Invalid(field, "unknown status %q (want one of %s)", s, strings.Join(names, ", "))
}

// Active reports whether the task is started: clients are offered it.
func (s TaskStatus) Active() bool { return s == StatusStartRequested || s == StatusRunning }

// Busy reports whether the task has a run that has not ended yet.
func (s TaskStatus) Busy() bool { return s.Active() || s == StatusStopRequested }

// TaskState is what the task commands decide on, folded from the task's
// events.
type TaskState struct {
	Exists    bool             `json:"-"`
	Spec      events.TaskSpec  `json:"spec"`
	SpecSeq   uint64           `json:"spec_seq"`
	Status    TaskStatus       `json:"status"`
	Run       string           `json:"run,omitempty"`
	Runs      int              `json:"runs"`
	Files     []events.FileRef `json:"files"`
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
	// ServerBy is the supervisor that started the current run's server.
	ServerBy string `json:"-"`
	// Signatures are the operators' signatures over the task as it is
	// now; a change of its spec or files voids them.
	Signatures []events.TaskSignature `json:"signatures,omitempty"`
	// SuperLinkCA is the CA certificate of the current run's SuperLink
	// (a Flower App task; "" until the cloud issued it).
	SuperLinkCA string `json:"superlink_ca,omitempty"`
}

// Apply folds one event of the task into the state.
func (s *TaskState) Apply(e events.Envelope) {
	switch p := e.Event.(type) {
	case *events.TaskCreated:
		runs := s.Runs
		*s = TaskState{Exists: true, Spec: p.TaskSpec, SpecSeq: e.Seq, Status: StatusIdle, Runs: runs, CreatedAt: e.Time, UpdatedAt: e.Time}
	case *events.TaskUpdated:
		s.Spec, s.SpecSeq, s.UpdatedAt, s.Signatures = p.TaskSpec, e.Seq, e.Time, nil
	case *events.TaskSigned:
		// What clients are offered changes: a refusal for want of a
		// signature is lifted like any quarantine by a new spec.
		s.Signatures, s.SpecSeq, s.UpdatedAt = withSignature(s.Signatures, p.TaskSignature), e.Seq, e.Time
	case *events.TaskDeleted:
		runs := s.Runs
		*s = TaskState{Runs: runs}
	case *events.TaskFilesUploaded:
		s.Files = mergeFiles(s.Files, p.Files)
		s.UpdatedAt, s.Signatures = e.Time, nil
	case *events.TaskStartRequested:
		s.Status, s.Run, s.ServerBy, s.SuperLinkCA = StatusStartRequested, p.Run, "", ""
		s.Runs++
	case *events.TaskSuperLinkCAIssued:
		if p.Run == s.Run {
			s.SuperLinkCA = p.Certificate
		}
	case *events.TaskServerStarted:
		if p.Run == s.Run && s.Status == StatusStartRequested {
			s.Status = StatusRunning
		}
		if p.Run == s.Run {
			s.ServerBy = p.Supervisor
		}
	case *events.TaskStopRequested:
		if p.Run == s.Run {
			s.Status = StatusStopRequested
		}
	case *events.TaskStopped:
		s.endRun(p.Run, StatusStopped)
	case *events.TaskFinished:
		s.endRun(p.Run, StatusFinished)
	case *events.TaskErrored:
		s.endRun(p.Run, StatusErrored)
	case *events.TaskInterrupted:
		s.endRun(p.Run, StatusInterrupted)
	}
}

func (s *TaskState) endRun(run string, to TaskStatus) {
	if run == s.Run && s.Status.Busy() {
		s.Status = to
	}
}

// mergeFiles replaces files of the same name and keeps the list sorted by
// name.
func mergeFiles(have, add []events.FileRef) []events.FileRef {
	out := slices.Clone(have)
	for _, f := range add {
		i := slices.IndexFunc(out, func(g events.FileRef) bool { return g.Name == f.Name })
		if i >= 0 {
			out[i] = f
		} else {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b events.FileRef) int { return strings.Compare(a.Name, b.Name) })
	return out
}
