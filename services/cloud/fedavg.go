package cloud

import (
	"bytes"
	"context"
	"io"
	"net"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/tasks/fedavg"
)

// FedAvgTask is the built-in FedAvg task as a deployment registers it:
// its settings go into the fedavg.json it uploads.
type FedAvgTask struct {
	// ID, Host and Port are the task's; port 0 is a port of Host free
	// at the time of registering.
	ID, Host string
	Port     int
	// Criterion selects the clients; ClientArguments are appended to
	// the client command (test-error makes the client fail).
	Criterion, ClientArguments string
	Tags                       []string
	Config                     fedavg.Config
}

// RegisterFedAvg registers the FedAvg task through op (updates it when
// it exists), and stores its files: the settings and the trigger. It
// returns the task's port.
func (c *Cloud) RegisterFedAvg(ctx context.Context, op *api.Client, t FedAvgTask) (int, error) {
	if err := t.Config.Validate(); err != nil {
		return 0, fault.Invalid("config", "%v", err)
	}
	if t.Port == 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(t.Host, "0"))
		if err != nil {
			return 0, err
		}
		t.Port = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	paths := []string{fedavg.ConfigFile}
	spec := commands.CreateTask{TaskID: t.ID, Host: t.Host, Port: t.Port, FilesPaths: paths, SelectionCriteria: t.Criterion,
		ClientArguments: &t.ClientArguments, Tags: t.Tags, ServerCommand: fedavg.ServerCommand, ClientCommand: fedavg.ClientCommand}
	_, err := op.CreateTask(ctx, spec)
	if fault.KindOf(err) == fault.KindConflict {
		_, err = op.UpdateTask(ctx, commands.UpdateTask{TaskID: t.ID, Host: &spec.Host, Port: &spec.Port, FilesPaths: &paths,
			SelectionCriteria: &spec.SelectionCriteria, ServerArguments: &spec.ServerArguments, ClientArguments: spec.ClientArguments,
			Tags: &spec.Tags, ServerCommand: &spec.ServerCommand, ClientCommand: &spec.ClientCommand})
	}
	if err != nil {
		return 0, err
	}
	settings := t.Config.JSON()
	files := []api.TaskFile{
		{Name: fedavg.ConfigFile, Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(settings)), nil }},
		{Name: fedavg.NotifyTrigger, Open: func() (io.ReadCloser, error) {
			f, err := fedavg.Files.Open(fedavg.NotifyTrigger)
			return f, err
		}},
	}
	_, _, err = op.StoreTaskFiles(ctx, c.Files, t.ID, files)
	return t.Port, err
}
