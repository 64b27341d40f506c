package fedavg

import "embed"

// Files are the task's files as an operator uploads them: the settings
// both roles read (fedavg.json) and the trigger the server fires when the
// accuracy is reached (notify).
//
//go:embed fedavg.json notify
var Files embed.FS

// Commands run the two roles with the flmngr binary itself.
var (
	ServerCommand = []string{"{flmngr}", "fl", "server", "--listen", "{host}:{port}", "--config", "fedavg.json"}
	ClientCommand = []string{"{flmngr}", "fl", "client", "--server", "{host}:{port}", "--config", "fedavg.json"}
)
