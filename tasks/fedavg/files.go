package fedavg

import "embed"

// Files are the task's files besides its settings (Config, uploaded as
// ConfigFile): the trigger the server fires when the accuracy is reached
// (NotifyTrigger).
//
//go:embed notify
var Files embed.FS

// Commands run the two roles with the flmngr binary itself.
var (
	ServerCommand = []string{"{flmngr}", "fl", "server", "--listen", "{host}:{port}", "--config", ConfigFile}
	ClientCommand = []string{"{flmngr}", "fl", "client", "--server", "{host}:{port}", "--config", ConfigFile}
)
