package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/api"
)

func taskWait(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("task wait", "task wait ID [--run N] [--for D]",
		"Waits until a task's run ends (its current run by default). Exits 0 when it\n"+
			"finished, 1 when it errored, was stopped or interrupted, or did not end in time.")
	run := fs.String("run", "", "the run to wait for (default the task's current one)")
	limit := fs.Duration("for", 10*time.Minute, "how long to wait at most")
	id, err := parseID(fs, args, "task")
	if err != nil {
		return err
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), *limit)
	defer cancel()
	t, err := c.Task(ctx, id)
	if err != nil {
		return err
	}
	if *run == "" {
		*run = t.Run
	}
	if *run == "" {
		return fmt.Errorf("task %s was never started", id)
	}
	req := api.EventsRequest{Task: id, WaitMS: cf.followWaitMS()}
	for {
		evs, next, err := c.Events(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("task %s run %s did not end within %s", id, *run, *limit)
			}
			return err
		}
		for _, e := range evs {
			switch p := e.Event.(type) {
			case *events.TaskFinished:
				if p.Run == *run {
					fmt.Fprintf(out, "task %s run %s finished (event %d)\n", id, *run, e.Seq)
					return nil
				}
			case *events.TaskErrored:
				if p.Run == *run {
					return fmt.Errorf("task %s run %s errored: %s", id, *run, p.Exception)
				}
			case *events.TaskStopped:
				if p.Run == *run {
					return fmt.Errorf("task %s run %s was stopped", id, *run)
				}
			case *events.TaskInterrupted:
				if p.Run == *run {
					return fmt.Errorf("task %s run %s was interrupted: %s", id, *run, p.Reason)
				}
			}
		}
		req.After = next
	}
}
