package commands

import (
	"slices"
	"strconv"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// CreateTask registers a task; the fields mirror the original's create-task
// form. Password is hashed by the Handler before deciding and is never
// stored in clear.
type CreateTask struct {
	TaskID            string   `json:"task_id"`
	Host              string   `json:"host"`
	Port              int      `json:"port"`
	Username          string   `json:"username,omitempty"`
	Password          string   `json:"password,omitempty"`
	FilesPaths        []string `json:"files_paths"`
	SelectionCriteria string   `json:"selection_criteria,omitempty"`
	ServerArguments   string   `json:"server_arguments,omitempty"`
	ClientArguments   *string  `json:"client_arguments,omitempty"`
	Tags              []string `json:"tags,omitempty"`
	ServerCommand     []string `json:"server_command,omitempty"`
	ClientCommand     []string `json:"client_command,omitempty"`
	// Kind is process (the default) or flower-app.
	Kind string `json:"kind,omitempty"`
	// Limits bound each client process of the task on its site:
	// "cpu=2,memory=2GiB,pids=256,walltime=2h" (taskd.ParseLimits).
	Limits string `json:"limits,omitempty"`

	passwordHash string
}

// UpdateTask changes the fields that are set (nil leaves a field as is).
type UpdateTask struct {
	TaskID            string    `json:"task_id"`
	Host              *string   `json:"host,omitempty"`
	Port              *int      `json:"port,omitempty"`
	Username          *string   `json:"username,omitempty"`
	Password          *string   `json:"password,omitempty"`
	FilesPaths        *[]string `json:"files_paths,omitempty"`
	SelectionCriteria *string   `json:"selection_criteria,omitempty"`
	ServerArguments   *string   `json:"server_arguments,omitempty"`
	ClientArguments   *string   `json:"client_arguments,omitempty"`
	Tags              *[]string `json:"tags,omitempty"`
	ServerCommand     *[]string `json:"server_command,omitempty"`
	ClientCommand     *[]string `json:"client_command,omitempty"`
	Kind              *string   `json:"kind,omitempty"`
	// Limits replaces the task's limits; "" removes them.
	Limits *string `json:"limits,omitempty"`

	passwordHash *string
}

// DeleteTask removes a task that is not running.
type DeleteTask struct {
	TaskID string `json:"task_id"`
}

// StartTask asks the cloud to start a task's server. Arguments, when set,
// replace the task's server arguments for this run.
type StartTask struct {
	TaskID    string  `json:"task_id"`
	Arguments *string `json:"arguments,omitempty"`
}

// StopTask asks the cloud to stop a started task.
type StopTask struct {
	TaskID string `json:"task_id"`
}

func (c CreateTask) Aggregate() events.Aggregate { return events.Task(c.TaskID) }
func (c UpdateTask) Aggregate() events.Aggregate { return events.Task(c.TaskID) }
func (c DeleteTask) Aggregate() events.Aggregate { return events.Task(c.TaskID) }
func (c StartTask) Aggregate() events.Aggregate  { return events.Task(c.TaskID) }
func (c StopTask) Aggregate() events.Aggregate   { return events.Task(c.TaskID) }

func (c *CreateTask) secrets() []secret {
	return []secret{{clear: &c.Password, hash: &c.passwordHash}}
}

func (c *UpdateTask) secrets() []secret {
	if c.Password == nil {
		return nil
	}
	c.passwordHash = new(string)
	return []secret{{clear: c.Password, hash: c.passwordHash}}
}

func (c CreateTask) spec() (events.TaskSpec, error) {
	if err := validateID("task_id", c.TaskID); err != nil {
		return events.TaskSpec{}, err
	}
	spec := events.TaskSpec{
		Host:              c.Host,
		Port:              c.Port,
		Username:          c.Username,
		PasswordHash:      c.passwordHash,
		SelectionCriteria: c.SelectionCriteria,
		ServerArguments:   c.ServerArguments,
		ClientArguments:   c.ClientArguments,
		FilesPaths:        c.FilesPaths,
		Tags:              c.Tags,
		ServerCommand:     c.ServerCommand,
		ClientCommand:     c.ClientCommand,
		Kind:              c.Kind,
		Limits:            c.Limits,
	}
	return validSpec(spec, c.Password)
}

// validSpec validates and normalises a whole task spec. password is the
// clear password of this command, if any, for its length check.
func validSpec(s events.TaskSpec, password string) (events.TaskSpec, error) {
	if err := validateHost(s.Host); err != nil {
		return s, err
	}
	if err := validatePort(s.Port); err != nil {
		return s, err
	}
	if err := validateCredentials(s.Username, password, s.PasswordHash != ""); err != nil {
		return s, err
	}
	if s.FilesPaths == nil {
		s.FilesPaths = []string{}
	}
	if err := validateFiles(s.FilesPaths); err != nil {
		return s, err
	}
	if _, err := CompileCriterion(s.SelectionCriteria); err != nil {
		return s, err
	}
	if err := validateArguments("server_arguments", s.ServerArguments); err != nil {
		return s, err
	}
	if s.ClientArguments != nil {
		if err := validateArguments("client_arguments", *s.ClientArguments); err != nil {
			return s, err
		}
	}
	tags, err := normalizeTags(s.Tags)
	if err != nil {
		return s, err
	}
	s.Tags = tags
	if err := validateArgv("server_command", s.ServerCommand); err != nil {
		return s, err
	}
	if err := validateArgv("client_command", s.ClientCommand); err != nil {
		return s, err
	}
	limits, err := validLimits(s.Limits)
	if err != nil {
		return s, err
	}
	s.Limits = limits
	return withKind(s)
}

func (c CreateTask) decide(s TaskState) ([]events.Payload, error) {
	if c.Password != "" && c.passwordHash == "" {
		return nil, fault.Internal(nil, "password of task %s was not hashed", c.TaskID)
	}
	spec, err := c.spec()
	if err != nil {
		return nil, err
	}
	if s.Exists {
		return nil, fault.Conflict("task %s already exists", c.TaskID)
	}
	return []events.Payload{&events.TaskCreated{TaskSpec: spec}}, nil
}

func (c UpdateTask) decide(s TaskState) ([]events.Payload, error) {
	if err := validateID("task_id", c.TaskID); err != nil {
		return nil, err
	}
	if !s.Exists {
		return nil, fault.NotFound("task %s not found", c.TaskID)
	}
	if c.Password != nil && c.passwordHash == nil {
		return nil, fault.Internal(nil, "password of task %s was not hashed", c.TaskID)
	}
	next := s.Spec
	password := ""
	set(&next.Host, c.Host)
	set(&next.Port, c.Port)
	set(&next.Username, c.Username)
	if c.passwordHash != nil {
		next.PasswordHash = *c.passwordHash
		password = *c.Password
	}
	set(&next.SelectionCriteria, c.SelectionCriteria)
	set(&next.ServerArguments, c.ServerArguments)
	if c.ClientArguments != nil {
		next.ClientArguments = c.ClientArguments
	}
	set(&next.FilesPaths, c.FilesPaths)
	set(&next.Tags, c.Tags)
	set(&next.ServerCommand, c.ServerCommand)
	set(&next.ClientCommand, c.ClientCommand)
	set(&next.Kind, c.Kind)
	set(&next.Limits, c.Limits)
	next, err := validSpec(next, password)
	if err != nil {
		return nil, err
	}
	changed := specChanges(s.Spec, next)
	if len(changed) == 0 {
		return nil, nil
	}
	return []events.Payload{&events.TaskUpdated{TaskSpec: next, Changed: changed}}, nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// specChanges names the spec fields that differ, in a fixed order.
func specChanges(a, b events.TaskSpec) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("host", a.Host != b.Host)
	add("port", a.Port != b.Port)
	add("username", a.Username != b.Username)
	add("password", a.PasswordHash != b.PasswordHash)
	add("selection_criteria", a.SelectionCriteria != b.SelectionCriteria)
	add("server_arguments", a.ServerArguments != b.ServerArguments)
	add("client_arguments", !equalPtr(a.ClientArguments, b.ClientArguments))
	add("files_paths", !slices.Equal(a.FilesPaths, b.FilesPaths))
	add("tags", !slices.Equal(a.Tags, b.Tags))
	add("server_command", !slices.Equal(a.ServerCommand, b.ServerCommand))
	add("client_command", !slices.Equal(a.ClientCommand, b.ClientCommand))
	add("kind", a.Kind != b.Kind)
	add("limits", a.Limits != b.Limits)
	return out
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func (c DeleteTask) decide(s TaskState) ([]events.Payload, error) {
	if err := validateID("task_id", c.TaskID); err != nil {
		return nil, err
	}
	if !s.Exists {
		return nil, fault.NotFound("task %s not found", c.TaskID)
	}
	if s.Status.Busy() {
		return nil, fault.Conflict("task %s is %s; stop it before deleting it", c.TaskID, s.Status)
	}
	return []events.Payload{&events.TaskDeleted{}}, nil
}

func (c StartTask) decide(s TaskState) ([]events.Payload, error) {
	if err := validateID("task_id", c.TaskID); err != nil {
		return nil, err
	}
	if c.Arguments != nil {
		if err := validateArguments("arguments", *c.Arguments); err != nil {
			return nil, err
		}
	}
	if !s.Exists {
		return nil, fault.NotFound("task %s not found", c.TaskID)
	}
	switch {
	case s.Status.Active():
		return nil, fault.Conflict("task %s is already running", c.TaskID)
	case s.Status == StatusStopRequested:
		return nil, fault.Conflict("task %s is stopping; start it again once it has stopped", c.TaskID)
	}
	if missing := s.missingEntryPoint(); missing != "" {
		return nil, fault.Conflict("task %s has no %s: upload it first (flmngr task upload %s %s)", c.TaskID, missing, c.TaskID, missing)
	}
	return []events.Payload{&events.TaskStartRequested{Arguments: c.Arguments, Run: strconv.Itoa(s.Runs + 1)}}, nil
}

func (c StopTask) decide(s TaskState) ([]events.Payload, error) {
	if err := validateID("task_id", c.TaskID); err != nil {
		return nil, err
	}
	if !s.Exists {
		return nil, fault.NotFound("task %s not found", c.TaskID)
	}
	switch {
	case s.Status == StatusStopRequested:
		return nil, fault.Conflict("task %s is already stopping", c.TaskID)
	case !s.Status.Active():
		return nil, fault.Conflict("task %s is not running", c.TaskID)
	}
	return []events.Payload{&events.TaskStopRequested{Run: s.Run}}, nil
}
