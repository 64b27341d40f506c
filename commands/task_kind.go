package commands

import (
	"slices"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// Task kinds: what a task runs.
const (
	// KindProcess runs the task's own processes: server.py and client.py,
	// or its server and client commands. It is the default.
	KindProcess = "process"
	// KindFlowerApp runs the task's files as a Flower App: the cloud
	// supervises a SuperLink and submits the run, each matching client's
	// agent supervises a SuperNode.
	KindFlowerApp = "flower-app"
)

// FlowerAppEntryPoint is the file a Flower App task must have.
const FlowerAppEntryPoint = "pyproject.toml"

// The commands a Flower App task runs unless it names its own: the
// flmngr binary's Flower drivers, which speak the report protocol.
var (
	FlowerAppServerCommand = []string{"{flmngr}", "flower", "superlink", "--listen", "{host}:{port}",
		"--app", "{taskdir}", "--state", "{workdir}/flower/task_{task}"}
	FlowerAppClientCommand = []string{"{flmngr}", "flower", "supernode", "--superlink", "{host}:{port}",
		"--client", "{client}", "--state", "{workdir}/flower/task_{task}"}
)

// FlowerAppStopGrace is the least time a Flower App task's server is
// given to stop: it stops the run with the flwr CLI (seconds of Python
// start-up, more on a loaded machine), then the SuperLink.
const FlowerAppStopGrace = 30 * time.Second

// TaskKind is a spec's kind, the default for a spec that has none.
func TaskKind(s events.TaskSpec) string {
	if s.Kind == "" {
		return KindProcess
	}
	return s.Kind
}

// withKind validates a spec's kind and gives a Flower App task the
// driver commands it does not name itself; a task that stops being a
// Flower App loses them. A process task is stored without a kind, as
// before kinds existed.
func withKind(s events.TaskSpec) (events.TaskSpec, error) {
	switch s.Kind {
	case "", KindProcess:
		s.Kind = ""
		if slices.Equal(s.ServerCommand, FlowerAppServerCommand) {
			s.ServerCommand = nil
		}
		if slices.Equal(s.ClientCommand, FlowerAppClientCommand) {
			s.ClientCommand = nil
		}
	case KindFlowerApp:
		if len(s.ServerCommand) == 0 {
			s.ServerCommand = slices.Clone(FlowerAppServerCommand)
		}
		if len(s.ClientCommand) == 0 {
			s.ClientCommand = slices.Clone(FlowerAppClientCommand)
		}
	default:
		return s, fault.Invalid("kind", "unknown task kind %q: use %s (the default) or %s", s.Kind, KindProcess, KindFlowerApp)
	}
	return s, nil
}
