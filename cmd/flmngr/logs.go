package main

import (
	"context"
	"fmt"
	"io"

	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/logs"
)

func runLogs(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("logs", "logs TASK [--run N] [--client ID | --server] [--follow] [--json]",
		"Prints what a task's processes printed: its server's and every client's\n"+
			"output of one run (default the task's current run), tracebacks included.\n"+
			"With --follow it keeps printing new lines until interrupted.")
	run := fs.String("run", "", "the run (default the task's current one)")
	client := fs.String("client", "", "only this client's process")
	server := fs.Bool("server", false, "only the server's process")
	follow := fs.Bool("follow", false, "keep printing new lines")
	task, err := parseID(fs, args, "task")
	if err != nil {
		return err
	}
	if *client != "" && *server {
		return fmt.Errorf("%w: --client and --server are exclusive", errUsage)
	}
	req := api.LogsRequest{Task: task, Run: *run}
	switch {
	case *client != "":
		req.Origin = logs.ClientOrigin(*client)
	case *server:
		req.Origin = "server"
	}
	if *follow {
		req.WaitMS = cf.followWaitMS()
	}
	return followPages(cf, out, *follow, func(ctx context.Context, c *api.Client) ([]logs.Line, error) {
		page, err := c.Logs(ctx, req)
		if err == nil {
			req.After = page.Next
		}
		return page.Lines, err
	}, func(l logs.Line) any { return l }, func(l logs.Line) {
		fmt.Fprintf(out, "%s  %-16s %-6s %s\n", l.Time.Local().Format("15:04:05.000"), l.Origin, l.Stream, l.Text)
	}, func() error { return nil })
}
