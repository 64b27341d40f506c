package events

import "time"

// Wire names of the client aggregate's events.
const (
	ClientRegisteredV1      = "client.registered.v1"
	ClientInfoReportedV1    = "client.info_reported.v1"
	ClientOffersChangedV1   = "client.offers_changed.v1"
	ClientTaskDownloadedV1  = "client.task_downloaded.v1"
	ClientTaskStartedV1     = "client.task_started.v1"
	ClientTaskFinishedV1    = "client.task_finished.v1"
	ClientTaskErroredV1     = "client.task_errored.v1"
	ClientTaskStoppedV1     = "client.task_stopped.v1"
	ClientTaskInterruptedV1 = "client.task_interrupted.v1"
	ClientTaskRunningV1     = "client.task_running.v1"
	ClientTaskExitedV1      = "client.task_exited.v1"
	ClientTaskQuarantinedV1 = "client.task_quarantined.v1"
	ClientDisconnectedV1    = "client.disconnected.v1"
	ClientReconnectedV1     = "client.reconnected.v1"
	ClientKeyIssuedV1       = "client.key_issued.v1"
	ClientKeyRevokedV1      = "client.key_revoked.v1"

	ClientDownloadCapabilityIssuedV1  = "client.download_capability_issued.v1"
	ClientDownloadCapabilityRevokedV1 = "client.download_capability_revoked.v1"
	ClientTaskRefusedV1               = "client.task_refused.v1"
	ClientTaskAwaitingApprovalV1      = "client.task_awaiting_approval.v1"
	ClientTaskApprovedV1              = "client.task_approved.v1"
	ClientSuperNodeKeyReportedV1      = "client.supernode_key_reported.v1"
)

func init() {
	register(
		func() Payload { return &ClientRegistered{} },
		func() Payload { return &ClientInfoReported{} },
		func() Payload { return &ClientOffersChanged{} },
		func() Payload { return &ClientTaskDownloaded{} },
		func() Payload { return &ClientTaskStarted{} },
		func() Payload { return &ClientTaskFinished{} },
		func() Payload { return &ClientTaskErrored{} },
		func() Payload { return &ClientTaskStopped{} },
		func() Payload { return &ClientTaskInterrupted{} },
		func() Payload { return &ClientTaskRunning{} },
		func() Payload { return &ClientTaskExited{} },
		func() Payload { return &ClientTaskQuarantined{} },
		func() Payload { return &ClientDisconnected{} },
		func() Payload { return &ClientReconnected{} },
		func() Payload { return &ClientKeyIssued{} },
		func() Payload { return &ClientKeyRevoked{} },
		func() Payload { return &ClientDownloadCapabilityIssued{} },
		func() Payload { return &ClientDownloadCapabilityRevoked{} },
		func() Payload { return &ClientTaskRefused{} },
		func() Payload { return &ClientTaskAwaitingApproval{} },
		func() Payload { return &ClientTaskApproved{} },
		func() Payload { return &ClientSuperNodeKeyReported{} },
	)
}

// ClientAttributes are what a client reports about itself: the fields of the
// original user record plus free-form extra attributes. Selection criteria
// are evaluated against them.
type ClientAttributes struct {
	Sensors                  []string       `json:"sensors"`
	DataQnt                  int64          `json:"data_qnt"`
	AvgAccContrib            *float64       `json:"avg_acc_contrib"`
	AvgDisconnectionPerRound *float64       `json:"avg_disconnection_per_round"`
	Extra                    map[string]any `json:"extra,omitempty"`
}

// ClientRegistered records a new client and its first attributes.
type ClientRegistered struct {
	Attributes ClientAttributes `json:"attributes"`
}

// ClientInfoReported carries a client's new attributes, whole.
type ClientInfoReported struct {
	Attributes ClientAttributes `json:"attributes"`
	Changed    []string         `json:"changed"`
}

// Offer is a running task offered to a client, with what the client needs
// to fetch and run it. It never carries a password.
type Offer struct {
	TaskID          string    `json:"task_id"`
	Run             string    `json:"run"`
	SpecSeq         uint64    `json:"spec_seq"`
	Host            string    `json:"host"`
	Port            int       `json:"port"`
	Tags            []string  `json:"tags"`
	ClientArguments *string   `json:"client_arguments"`
	ClientCommand   []string  `json:"client_command,omitempty"`
	Files           []FileRef `json:"files"`
	// Limits are the task's resource limits (TaskSpec.Limits).
	Limits string `json:"limits,omitempty"`
	// Signatures are the operators' signatures over what the client runs
	// (TaskStatement); an agent that trusts keys runs only what one of
	// them signed.
	Signatures []TaskSignature `json:"signatures,omitempty"`
	// SuperLinkCA is, for a Flower App task, the CA certificate (PEM) of
	// the run's SuperLink: the client's SuperNode trusts only it.
	SuperLinkCA string `json:"superlink_ca,omitempty"`
}

// Decision explains why a task was or was not offered to a client.
type Decision struct {
	TaskID        string `json:"task_id"`
	Criterion     string `json:"criterion"`
	AttributesSeq uint64 `json:"attributes_seq"`
	Matched       bool   `json:"matched"`
	Error         string `json:"error,omitempty"`
}

// ClientOffersChanged carries the ordered list of running tasks a client
// matches (priority = task creation order) and the decisions behind it.
type ClientOffersChanged struct {
	Offers    []Offer    `json:"offers"`
	Decisions []Decision `json:"decisions"`
	Cause     string     `json:"cause"`
	// Finished names the tasks withdrawn because their run finished (as
	// opposed to stopped or failed): their client processes may finish
	// by themselves.
	Finished []string `json:"finished,omitempty"`
}

// ClientTaskDownloaded records that a client fetched and verified a task's
// files.
type ClientTaskDownloaded struct {
	TaskID   string        `json:"task_id"`
	Run      string        `json:"run"`
	Files    []FileRef     `json:"files"`
	Duration time.Duration `json:"duration_ns"`
}

// ClientTaskStarted records the client process of a task run.
type ClientTaskStarted struct {
	TaskID  string   `json:"task_id"`
	Run     string   `json:"run"`
	PID     int      `json:"pid"`
	Command []string `json:"command"`
}

// ClientTaskRunning records that a client process reported "Started":
// it got past its imports and set-up (the original's "Started client").
type ClientTaskRunning struct {
	TaskID string `json:"task_id"`
	Run    string `json:"run"`
}

// ClientTaskExited records that a client process is gone, however it
// ended.
type ClientTaskExited struct {
	TaskID string `json:"task_id"`
	Run    string `json:"run"`
	ExitStatus
}

// ClientTaskFinished records that a client process reported "Finished".
type ClientTaskFinished struct {
	TaskID string `json:"task_id"`
	Run    string `json:"run"`
}

// ClientTaskErrored records that a client could not run a task or that its
// process failed.
type ClientTaskErrored struct {
	TaskID    string      `json:"task_id"`
	Run       string      `json:"run"`
	Exception string      `json:"exception"`
	Exit      *ExitStatus `json:"exit,omitempty"`
}

// ClientTaskStopped records that a client stopped a task's process because
// the cloud stopped the task or stopped offering it.
type ClientTaskStopped struct {
	TaskID string `json:"task_id"`
	Run    string `json:"run"`
	Reason string `json:"reason"`
}

// ClientTaskInterrupted records that a task's client process ended because
// the agent went away.
type ClientTaskInterrupted struct {
	TaskID string `json:"task_id"`
	Run    string `json:"run"`
	Reason string `json:"reason"`
}

// ClientTaskQuarantined records that a client will not run a task run again:
// it failed there. The quarantine is lifted by a new run or a new spec.
type ClientTaskQuarantined struct {
	TaskID  string `json:"task_id"`
	Run     string `json:"run"`
	SpecSeq uint64 `json:"spec_seq"`
	Reason  string `json:"reason"`
}

// ClientTaskRefused records that a client would not run a task run: no
// signature by a key it trusts verifies, say. Nothing was started.
type ClientTaskRefused struct {
	TaskID  string `json:"task_id"`
	Run     string `json:"run"`
	SpecSeq uint64 `json:"spec_seq"`
	Reason  string `json:"reason"`
}

func (*ClientTaskRefused) EventType() string { return ClientTaskRefusedV1 }

// ClientTaskAwaitingApproval records that a client holds back a task run
// until its site approves exactly what it would run: the SHA-256 of the
// task's statement (TaskStatement: the files with their digests, the
// command, arguments and server), which the files it fetches are then
// checked against. Nothing was started; the run is neither failed nor
// quarantined, and the agent may run other tasks meanwhile.
type ClientTaskAwaitingApproval struct {
	TaskID    string    `json:"task_id"`
	Run       string    `json:"run"`
	SpecSeq   uint64    `json:"spec_seq"`
	Statement string    `json:"statement_sha256"`
	Files     []FileRef `json:"files"`
	// Signers are the keys whose signatures over the statement verify.
	Signers []string `json:"signers,omitempty"`
}

// ClientTaskApproved records that the site approved a task run's
// statement: the client may run it now.
type ClientTaskApproved struct {
	TaskID    string `json:"task_id"`
	Run       string `json:"run"`
	Statement string `json:"statement_sha256"`
}

func (*ClientTaskAwaitingApproval) EventType() string { return ClientTaskAwaitingApprovalV1 }
func (*ClientTaskApproved) EventType() string         { return ClientTaskApprovedV1 }

// ClientSuperNodeKeyReported records the public key (one line, OpenSSH
// format, ECDSA) of the SuperNode key pair a client made for a run of a
// Flower App task it is offered. The private key stays on the client.
// The cloud registers the key with the run's SuperLink while the client
// is offered the run.
type ClientSuperNodeKeyReported struct {
	TaskID    string `json:"task_id"`
	Run       string `json:"run"`
	PublicKey string `json:"public_key"`
}

func (*ClientSuperNodeKeyReported) EventType() string { return ClientSuperNodeKeyReportedV1 }

// ClientDisconnected records that the cloud stopped hearing from a client.
type ClientDisconnected struct {
	LastSeen time.Time `json:"last_seen"`
}

// ClientReconnected records that a silent client was heard from again.
type ClientReconnected struct {
	Gap time.Duration `json:"gap_ns"`
}

// ClientKeyIssued records the public NKey a client's agent proves its
// identity with on NATS (its seed never leaves the machine that made it);
// it replaces any earlier key.
type ClientKeyIssued struct {
	PublicKey string `json:"public_key"`
	// Enrolment names the token the device enrolled with, when it made
	// the key itself ("": issued by an operator).
	Enrolment string `json:"enrolment,omitempty"`
}

// ClientKeyRevoked records that a client's key no longer connects.
type ClientKeyRevoked struct {
	PublicKey string `json:"public_key"`
	Reason    string `json:"reason,omitempty"`
}

// ClientDownloadCapabilityIssued records a capability to download one
// task run's files, minted for the client (the original's edge agents
// send it as the password of HTTP Basic auth). Only the SHA-256 of the
// secret is recorded; the secret went to the client alone. It lapses
// when the client is no longer offered that run of that spec.
type ClientDownloadCapabilityIssued struct {
	ID      string `json:"id"`
	TaskID  string `json:"task_id"`
	Run     string `json:"run"`
	SpecSeq uint64 `json:"spec_seq"`
	SHA256  string `json:"sha256"`
}

// ClientDownloadCapabilityRevoked records that a client's capabilities
// for a task (or the one named by ID) no longer open anything.
type ClientDownloadCapabilityRevoked struct {
	TaskID string `json:"task_id"`
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (*ClientDownloadCapabilityIssued) EventType() string {
	return ClientDownloadCapabilityIssuedV1
}
func (*ClientDownloadCapabilityRevoked) EventType() string {
	return ClientDownloadCapabilityRevokedV1
}
func (*ClientKeyIssued) EventType() string       { return ClientKeyIssuedV1 }
func (*ClientKeyRevoked) EventType() string      { return ClientKeyRevokedV1 }
func (*ClientRegistered) EventType() string      { return ClientRegisteredV1 }
func (*ClientInfoReported) EventType() string    { return ClientInfoReportedV1 }
func (*ClientOffersChanged) EventType() string   { return ClientOffersChangedV1 }
func (*ClientTaskDownloaded) EventType() string  { return ClientTaskDownloadedV1 }
func (*ClientTaskStarted) EventType() string     { return ClientTaskStartedV1 }
func (*ClientTaskFinished) EventType() string    { return ClientTaskFinishedV1 }
func (*ClientTaskErrored) EventType() string     { return ClientTaskErroredV1 }
func (*ClientTaskStopped) EventType() string     { return ClientTaskStoppedV1 }
func (*ClientTaskInterrupted) EventType() string { return ClientTaskInterruptedV1 }
func (*ClientTaskRunning) EventType() string     { return ClientTaskRunningV1 }
func (*ClientTaskExited) EventType() string      { return ClientTaskExitedV1 }
func (*ClientTaskQuarantined) EventType() string { return ClientTaskQuarantinedV1 }
func (*ClientDisconnected) EventType() string    { return ClientDisconnectedV1 }
func (*ClientReconnected) EventType() string     { return ClientReconnectedV1 }

// TaskRunOf names the task run a client event is about, for the events
// that are about one.
func TaskRunOf(p Payload) (task, run string, ok bool) {
	switch p := p.(type) {
	case *ClientTaskDownloaded:
		return p.TaskID, p.Run, true
	case *ClientTaskStarted:
		return p.TaskID, p.Run, true
	case *ClientTaskRunning:
		return p.TaskID, p.Run, true
	case *ClientTaskFinished:
		return p.TaskID, p.Run, true
	case *ClientTaskErrored:
		return p.TaskID, p.Run, true
	case *ClientTaskStopped:
		return p.TaskID, p.Run, true
	case *ClientTaskInterrupted:
		return p.TaskID, p.Run, true
	case *ClientTaskQuarantined:
		return p.TaskID, p.Run, true
	case *ClientTaskExited:
		return p.TaskID, p.Run, true
	case *ClientTaskRefused:
		return p.TaskID, p.Run, true
	case *ClientTaskAwaitingApproval:
		return p.TaskID, p.Run, true
	case *ClientTaskApproved:
		return p.TaskID, p.Run, true
	case *ClientSuperNodeKeyReported:
		return p.TaskID, p.Run, true
	}
	return "", "", false
}
