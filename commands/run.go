package commands

import (
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// RecordRun records what a run of a task's server did. The cloud's server
// supervisor sends it; Event is one of TaskServerStarted,
// TaskRoundCompleted, TaskTriggerFired, TaskTriggerRan, TaskServerExited,
// TaskFinished, TaskErrored, TaskStopped, TaskInterrupted,
// TaskStepReported and TaskSuperLinkCAIssued.
type RecordRun struct {
	TaskID string
	Event  events.Payload
}

func (c RecordRun) Aggregate() events.Aggregate { return events.Task(c.TaskID) }

// runOf returns the run a server event is about.
func runOf(p events.Payload) (string, bool) {
	switch p := p.(type) {
	case *events.TaskServerStarted:
		return p.Run, true
	case *events.TaskRoundCompleted:
		return p.Run, true
	case *events.TaskTriggerFired:
		return p.Run, true
	case *events.TaskTriggerRan:
		return p.Run, true
	case *events.TaskServerExited:
		return p.Run, true
	case *events.TaskFinished:
		return p.Run, true
	case *events.TaskErrored:
		return p.Run, true
	case *events.TaskStopped:
		return p.Run, true
	case *events.TaskInterrupted:
		return p.Run, true
	case *events.TaskStepReported:
		return p.Run, true
	case *events.TaskSuperLinkCAIssued:
		return p.Run, true
	}
	return "", false
}

func (c RecordRun) decide(s TaskState) ([]events.Payload, error) {
	run, ok := runOf(c.Event)
	if !ok {
		return nil, fault.Invalid("event", "%T is not a server event", c.Event)
	}
	if !s.Exists {
		return nil, fault.NotFound("task %s not found", c.TaskID)
	}
	if run != s.Run {
		return nil, fault.Conflict("run %s of task %s is over (current run %s)", run, c.TaskID, s.Run)
	}
	switch c.Event.(type) {
	case *events.TaskServerStarted:
		if s.Status != StatusStartRequested {
			return nil, fault.Conflict("run %s of task %s is %s, not waiting to start", run, c.TaskID, s.Status)
		}
	case *events.TaskSuperLinkCAIssued:
		if s.Status != StatusStartRequested {
			return nil, fault.Conflict("run %s of task %s is %s, not waiting to start", run, c.TaskID, s.Status)
		}
		if TaskKind(s.Spec) != KindFlowerApp {
			return nil, fault.Invalid("event", "task %s is not a Flower App", c.TaskID)
		}
	case *events.TaskFinished, *events.TaskErrored, *events.TaskStopped, *events.TaskInterrupted:
		if !s.Status.Busy() {
			return nil, nil // the run already ended: nothing to record
		}
	}
	return []events.Payload{c.Event}, nil
}

// RecordTaskFiles records files stored for a task (their bytes are in the
// file store already, checked by the caller).
type RecordTaskFiles struct {
	TaskID string           `json:"task_id"`
	Files  []events.FileRef `json:"files"`
}

func (c RecordTaskFiles) Aggregate() events.Aggregate { return events.Task(c.TaskID) }

// ValidateFileRef checks a file reference's name, size and digest.
func ValidateFileRef(f events.FileRef) error {
	if err := ValidateFileName("files", f.Name); err != nil {
		return err
	}
	if f.Size < 0 {
		return fault.Invalid("files", "file %s has a negative size", f.Name)
	}
	if len(f.SHA256) != 64 || !isHex(f.SHA256) {
		return fault.Invalid("files", "file %s: sha256 must be 64 hexadecimal digits", f.Name)
	}
	return nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (c RecordTaskFiles) decide(s TaskState) ([]events.Payload, error) {
	if err := validateID("task_id", c.TaskID); err != nil {
		return nil, err
	}
	if len(c.Files) == 0 {
		return nil, fault.Invalid("files", "no files")
	}
	if len(c.Files) > maxFiles {
		return nil, fault.Invalid("files", "at most %d files at once", maxFiles)
	}
	seen := map[string]bool{}
	for _, f := range c.Files {
		if err := ValidateFileRef(f); err != nil {
			return nil, err
		}
		if seen[f.Name] {
			return nil, fault.Invalid("files", "file %s is listed twice", f.Name)
		}
		seen[f.Name] = true
	}
	if !s.Exists {
		return nil, fault.NotFound("task %s not found", c.TaskID)
	}
	var changed []events.FileRef
	for _, f := range c.Files {
		if !hasFile(s.Files, f) {
			changed = append(changed, f)
		}
	}
	if len(changed) == 0 {
		return nil, nil
	}
	names := map[string]bool{}
	for _, f := range s.Files {
		names[f.Name] = true
	}
	for _, f := range changed {
		names[f.Name] = true
	}
	if len(names) > maxTaskFiles {
		return nil, fault.Invalid("files", "task %s would hold %d files, at most %d: delete the task or reuse names", c.TaskID, len(names), maxTaskFiles)
	}
	return []events.Payload{&events.TaskFilesUploaded{Files: changed}}, nil
}

func hasFile(files []events.FileRef, f events.FileRef) bool {
	for _, g := range files {
		if g == f {
			return true
		}
	}
	return false
}

// FileNamed returns the stored file of a task with that name.
func (s TaskState) FileNamed(name string) (events.FileRef, bool) {
	for _, f := range s.Files {
		if f.Name == name {
			return f, true
		}
	}
	return events.FileRef{}, false
}

// ServerEntryPoint is the default server program of a task.
const ServerEntryPoint = "server.py"

// ClientEntryPoint is the default client program of a task.
const ClientEntryPoint = "client.py"

// missingEntryPoint names the uploaded file a task's server needs and does
// not have, if any: server.py by default, or the program of an explicit
// server command that is a relative path into the task's files.
func (s TaskState) missingEntryPoint() string {
	need := ServerEntryPoint
	if s.Spec.Kind == KindFlowerApp {
		need = FlowerAppEntryPoint
	} else if len(s.Spec.ServerCommand) > 0 {
		need = taskFileOf(s.Spec.ServerCommand[0])
		if need == "" {
			return ""
		}
	}
	if _, ok := s.FileNamed(need); ok {
		return ""
	}
	return need
}

// taskFileOf returns the task file a program refers to: a relative path
// with a slash ("./server", "bin/server"); "" for a program looked up in
// PATH, an absolute path or a placeholder.
func taskFileOf(program string) string {
	if program == "" || program[0] == '/' || program[0] == '{' {
		return ""
	}
	for i := 0; i < len(program); i++ {
		if program[i] == '/' {
			if len(program) > 2 && program[:2] == "./" {
				return program[2:]
			}
			return program
		}
	}
	return ""
}
