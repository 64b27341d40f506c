package projections

import (
	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
)

// TaskView is everything known about a task: the original task record's
// fields (in Spec), the life-cycle state and what its runs reported.
type TaskView struct {
	ID string `json:"id"`
	commands.TaskState
	// Running is the original record's flag: the task is started.
	Running bool `json:"running"`
	// Arguments are the server arguments of the current run, when the
	// start request replaced the task's own.
	Arguments *string `json:"arguments,omitempty"`
	// ServerPID is the current run's server process, while it runs, and
	// Supervisor the cloud instance that runs it.
	ServerPID  int    `json:"server_pid,omitempty"`
	Supervisor string `json:"supervisor,omitempty"`
	// Round and Metrics are the last round the current or last run
	// completed and its metrics.
	Round   int                `json:"round,omitempty"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// LastError is why the last run failed, if it did.
	LastError string `json:"last_error,omitempty"`
	// LastSeq is the stream sequence of the task's last event, and
	// CreatedSeq the one of its creation: tasks are listed in that order.
	LastSeq    uint64 `json:"last_seq"`
	CreatedSeq uint64 `json:"created_seq"`
}

// ApplyTask folds one task event into a view and returns the new view, or
// nil when the task was deleted. v may be nil for a task not seen yet.
func ApplyTask(v *TaskView, e events.Envelope) *TaskView {
	if v == nil {
		v = &TaskView{ID: e.Aggregate.ID}
	} else {
		v.Exists = true // a stored view is of an existing task
	}
	v.TaskState.Apply(e)
	if !v.Exists {
		return nil
	}
	v.LastSeq = e.Seq
	v.Running = v.Status.Active()
	switch p := e.Event.(type) {
	case *events.TaskCreated:
		v.CreatedSeq = e.Seq
	case *events.TaskStartRequested:
		v.Arguments = p.Arguments
		v.ServerPID, v.Supervisor, v.Round, v.Metrics, v.LastError = 0, "", 0, nil, ""
	case *events.TaskServerStarted:
		if p.Run == v.Run {
			v.ServerPID, v.Supervisor = p.PID, p.Supervisor
		}
	case *events.TaskServerExited:
		if p.Run == v.Run {
			v.ServerPID = 0
		}
	case *events.TaskRoundCompleted:
		if p.Run == v.Run {
			v.Round, v.Metrics = p.Round, p.Metrics
		}
	case *events.TaskErrored:
		if p.Run == v.Run {
			v.LastError = p.Exception
		}
	}
	return v
}
