package api

import (
	"context"

	"github.com/flmngr/flmngr/commands"
)

// SubjectSignTask is where an operator records a signature over a task.
const SubjectSignTask = "flmngr.cmd.task.sign"

// SignTask records an operator's signature over what a client runs of a
// task (made where the key is: the cloud never sees it).
func (c *Client) SignTask(ctx context.Context, cmd commands.SignTask) (CommandReply, error) {
	return c.command(ctx, SubjectSignTask, cmd)
}
