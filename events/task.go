package events

import "time"

// Wire names of the task aggregate's events.
const (
	TaskCreatedV1        = "task.created.v1"
	TaskUpdatedV1        = "task.updated.v1"
	TaskDeletedV1        = "task.deleted.v1"
	TaskFilesUploadedV1  = "task.files_uploaded.v1"
	TaskStartRequestedV1 = "task.start_requested.v1"
	TaskServerStartedV1  = "task.server_started.v1"
	TaskServerExitedV1   = "task.server_exited.v1"
	TaskRoundCompletedV1 = "task.round_completed.v1"
	TaskTriggerFiredV1   = "task.trigger_fired.v1"
	TaskTriggerRanV1     = "task.trigger_ran.v1"
	TaskFinishedV1       = "task.finished.v1"
	TaskErroredV1        = "task.errored.v1"
	TaskStopRequestedV1  = "task.stop_requested.v1"
	TaskStoppedV1        = "task.stopped.v1"
	TaskInterruptedV1    = "task.interrupted.v1"
	TaskStepReportedV1   = "task.step_reported.v1"

	TaskSuperLinkCAIssuedV1 = "task.superlink_ca_issued.v1"
)

func init() {
	register(
		func() Payload { return &TaskCreated{} },
		func() Payload { return &TaskUpdated{} },
		func() Payload { return &TaskDeleted{} },
		func() Payload { return &TaskFilesUploaded{} },
		func() Payload { return &TaskStartRequested{} },
		func() Payload { return &TaskServerStarted{} },
		func() Payload { return &TaskServerExited{} },
		func() Payload { return &TaskRoundCompleted{} },
		func() Payload { return &TaskTriggerFired{} },
		func() Payload { return &TaskTriggerRan{} },
		func() Payload { return &TaskFinished{} },
		func() Payload { return &TaskErrored{} },
		func() Payload { return &TaskStopRequested{} },
		func() Payload { return &TaskStopped{} },
		func() Payload { return &TaskInterrupted{} },
		func() Payload { return &TaskStepReported{} },
		func() Payload { return &TaskSuperLinkCAIssued{} },
	)
}

// TaskSpec is the operator-controlled configuration of a task: the fields of
// the original task record plus the optional explicit process commands.
type TaskSpec struct {
	Host              string   `json:"host"`
	Port              int      `json:"port"`
	Username          string   `json:"username,omitempty"`
	PasswordHash      string   `json:"password_hash,omitempty"`
	SelectionCriteria string   `json:"selection_criteria"`
	ServerArguments   string   `json:"server_arguments"`
	ClientArguments   *string  `json:"client_arguments"`
	FilesPaths        []string `json:"files_paths"`
	Tags              []string `json:"tags"`
	// ServerCommand and ClientCommand replace the default
	// "python3 server.py <workdir> <args>" when set.
	ServerCommand []string `json:"server_command,omitempty"`
	ClientCommand []string `json:"client_command,omitempty"`
	// Kind is what the task runs: "" for processes of the task's own
	// (server.py/client.py or the commands above), "flower-app" for a
	// Flower App run on a SuperLink and SuperNodes flmngr supervises.
	// Events written before kinds existed have none: they are processes.
	Kind string `json:"kind,omitempty"`
	// Limits bound what each client process of the task may use on its
	// site, in the canonical form of taskd.Limits
	// ("cpu=2,memory=2GiB,pids=256,walltime=2h"); "" limits nothing. A
	// site's ceiling caps them.
	Limits string `json:"limits,omitempty"`
}

// TaskCreated registers a new task.
type TaskCreated struct {
	TaskSpec
}

// TaskUpdated carries the whole new spec of a task after an update.
type TaskUpdated struct {
	TaskSpec
	// Changed lists the spec fields that differ from the previous spec.
	Changed []string `json:"changed"`
}

// TaskDeleted removes a task. Its id may be registered again afterwards.
type TaskDeleted struct{}

// FileRef identifies one stored task file by name and content digest.
type FileRef struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// TaskFilesUploaded records files stored for a task; a file with the same
// name replaces the earlier one.
type TaskFilesUploaded struct {
	Files []FileRef `json:"files"`
}

// TaskStartRequested asks the cloud to start a task's server. Arguments, when
// set, replace the task's server arguments for this run (the original's
// "arguments" field of rpc_exec_start_server_task).
type TaskStartRequested struct {
	Arguments *string `json:"arguments,omitempty"`
	Run       string  `json:"run"`
}

// TaskServerStarted records the server process of a run.
type TaskServerStarted struct {
	Run        string   `json:"run"`
	PID        int      `json:"pid"`
	Supervisor string   `json:"supervisor"`
	Command    []string `json:"command"`
}

// ExitStatus describes how a process ended.
type ExitStatus struct {
	Code     int           `json:"code"`
	Signal   string        `json:"signal,omitempty"`
	Duration time.Duration `json:"duration_ns"`
	LastLogs []string      `json:"last_logs,omitempty"`
}

// TaskServerExited records that a run's server process ended.
type TaskServerExited struct {
	Run string `json:"run"`
	ExitStatus
}

// TaskRoundCompleted records one round's metrics reported by the server
// (the report protocol's "model" line).
type TaskRoundCompleted struct {
	Run     string             `json:"run"`
	Round   int                `json:"round"`
	Metrics map[string]float64 `json:"metrics,omitempty"`
	Raw     map[string]string  `json:"raw,omitempty"`
}

// TaskTriggerFired records a trigger line from the server process.
type TaskTriggerFired struct {
	Run       string `json:"run"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

// TaskTriggerRan records the outcome of running a trigger.
type TaskTriggerRan struct {
	Run   string `json:"run"`
	Name  string `json:"name"`
	Code  int    `json:"code"`
	Error string `json:"error,omitempty"`
}

// TaskFinished records that a run's server reported "Finished".
type TaskFinished struct {
	Run string `json:"run"`
}

// TaskErrored records that a run failed: an error line, an exit without a
// report, or a failure to start.
type TaskErrored struct {
	Run       string      `json:"run"`
	Exception string      `json:"exception"`
	Exit      *ExitStatus `json:"exit,omitempty"`
}

// TaskStopRequested asks the cloud to stop a running task.
type TaskStopRequested struct {
	Run string `json:"run"`
}

// TaskStopped records that a stop request was carried out.
type TaskStopped struct {
	Run string `json:"run"`
	// Reason, when set, says why a run was recorded stopped without its
	// server being stopped (it was no longer running).
	Reason string `json:"reason,omitempty"`
}

// TaskInterrupted records that a run ended because its supervisor went
// away (shutdown or crash) rather than by the task's own doing.
type TaskInterrupted struct {
	Run    string `json:"run"`
	Reason string `json:"reason"`
}

func (*TaskCreated) EventType() string        { return TaskCreatedV1 }
func (*TaskUpdated) EventType() string        { return TaskUpdatedV1 }
func (*TaskDeleted) EventType() string        { return TaskDeletedV1 }
func (*TaskFilesUploaded) EventType() string  { return TaskFilesUploadedV1 }
func (*TaskStartRequested) EventType() string { return TaskStartRequestedV1 }
func (*TaskServerStarted) EventType() string  { return TaskServerStartedV1 }
func (*TaskServerExited) EventType() string   { return TaskServerExitedV1 }
func (*TaskRoundCompleted) EventType() string { return TaskRoundCompletedV1 }
func (*TaskTriggerFired) EventType() string   { return TaskTriggerFiredV1 }
func (*TaskTriggerRan) EventType() string     { return TaskTriggerRanV1 }
func (*TaskFinished) EventType() string       { return TaskFinishedV1 }
func (*TaskErrored) EventType() string        { return TaskErroredV1 }
func (*TaskStopRequested) EventType() string  { return TaskStopRequestedV1 }
func (*TaskStopped) EventType() string        { return TaskStoppedV1 }
func (*TaskInterrupted) EventType() string    { return TaskInterruptedV1 }
func (*TaskStepReported) EventType() string   { return TaskStepReportedV1 }
func (*TaskSuperLinkCAIssued) EventType() string {
	return TaskSuperLinkCAIssuedV1
}

// TaskSuperLinkCAIssued records the CA certificate (PEM) the cloud made
// for one run of a Flower App task: the SuperLink's certificate is signed
// by it, and the clients the run is offered to get it with their offer
// to check they reach that SuperLink. No private key is recorded.
type TaskSuperLinkCAIssued struct {
	Run         string `json:"run"`
	Certificate string `json:"certificate"`
}

// TaskStepReported records a step a run's server reported (the report
// protocol's "step" line): for a Flower App, the SuperLink started, the
// run submitted, each status of the run, its log recorded.
type TaskStepReported struct {
	Run    string `json:"run"`
	Step   string `json:"step"`
	Detail string `json:"detail,omitempty"`
}
