package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/logs"
)

func runLogs(args []string, out io.Writer) error {
	fs := newFlags("logs", "logs TASK [--run N] [--client ID | --server] [--follow] [--json]",
		"Prints what a task's processes printed: its server's and every client's\n"+
			"output of one run (default the task's current run), tracebacks included.\n"+
			"With --follow it keeps printing new lines until interrupted.")
	var cf connFlags
	cf.register(fs)
	run := fs.String("run", "", "the run (default the task's current one)")
	client := fs.String("client", "", "only this client's process")
	server := fs.Bool("server", false, "only the server's process")
	follow := fs.Bool("follow", false, "keep printing new lines")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	task, err := taskID("", pos)
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
		req.WaitMS = int(min(cf.timeout-time.Second, 10*time.Second).Milliseconds())
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	enc := json.NewEncoder(out)
	for {
		page, err := c.Logs(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, l := range page.Lines {
			if cf.json {
				if err := enc.Encode(l); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(out, "%s  %-16s %-6s %s\n", l.Time.Local().Format("15:04:05.000"), l.Origin, l.Stream, l.Text)
		}
		req.After = page.Next
		if len(page.Lines) == 0 && !*follow {
			return nil
		}
	}
}
