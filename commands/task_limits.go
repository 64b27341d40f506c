package commands

import (
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/taskd"
)

// maxLimits bounds the text of a task's limits.
const maxLimits = 256

// validLimits reads a task's limits ("cpu=2,memory=2GiB,pids=256,
// walltime=2h") and gives them back in their canonical form, so that two
// ways of writing the same limits are one spec and one signed statement.
// The parsing is taskd's, the code that enforces them: what is stored is
// what a site can enforce.
func validLimits(s string) (string, error) {
	if len(s) > maxLimits {
		return "", fault.Invalid("limits", "limits are longer than %d bytes", maxLimits)
	}
	l, err := taskd.ParseLimits(s)
	if err != nil {
		return "", fault.Invalid("limits", "%v", err)
	}
	return l.String(), nil
}
