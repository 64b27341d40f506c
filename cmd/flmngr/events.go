package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/api"
)

func runEvents(args []string, out io.Writer) error {
	fs := newFlags("events", "events [--follow] [--since SEQ] [--task ID | --client ID] [--json]", "Prints events straight from the log, oldest first. With --follow it keeps\nprinting new events until interrupted.")
	var cf connFlags
	cf.register(fs)
	follow := fs.Bool("follow", false, "keep printing new events")
	since := fs.Uint64("since", 0, "start after this stream sequence")
	task := fs.String("task", "", "only events of this task")
	client := fs.String("client", "", "only events of this client")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	if *task != "" && *client != "" {
		return fmt.Errorf("%w: --task and --client are exclusive", errUsage)
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	enc := json.NewEncoder(out)
	if !cf.json {
		fmt.Fprintln(w, "SEQ\tTIME\tSOURCE\tAGGREGATE\tTYPE\tDETAIL")
	}
	req := api.EventsRequest{After: *since, Task: *task, Client: *client}
	if *follow {
		req.WaitMS = int(min(cf.timeout-time.Second, 10*time.Second).Milliseconds())
	}
	for {
		evs, next, err := c.Events(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return w.Flush()
			}
			return err
		}
		for _, e := range evs {
			if cf.json {
				if err := enc.Encode(wireEvent{Seq: e.Seq, Envelope: e}); err != nil {
					return err
				}
				continue
			}
			t := projections.Entry(e)
			fmt.Fprintf(w, "%d\t%s\t%s\t%s/%s\t%s\t%s\n", e.Seq, e.Time.Local().Format("15:04:05.000000"), e.Source, e.Aggregate.Kind, e.Aggregate.ID, e.Type, t.Detail)
		}
		if err := w.Flush(); err != nil {
			return err
		}
		req.After = next
		if len(evs) == 0 && !*follow {
			return nil
		}
	}
}

// wireEvent is an envelope with its stream sequence, as --json prints it.
type wireEvent struct {
	Seq uint64 `json:"seq"`
	events.Envelope
}

func runTimeline(args []string, out io.Writer) error {
	fs := newFlags("timeline", "timeline [TASK] [--client ID] [--after SEQ] [--limit N]", "Prints the timeline of a task (its events and what clients did with it),\nof a client, or of everything, with the time since the previous step and\nsince the first.")
	var cf connFlags
	cf.register(fs)
	client := fs.String("client", "", "the timeline of this client")
	after := fs.Uint64("after", 0, "start after this stream sequence")
	limit := fs.Int("limit", 1000, "at most this many entries")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var task string
	switch {
	case len(pos) > 1:
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos[1:])
	case len(pos) == 1:
		task = pos[0]
	}
	if task != "" && *client != "" {
		return fmt.Errorf("%w: a task and --client are exclusive", errUsage)
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	page, err := c.Timeline(context.Background(), api.TimelineRequest{TimelineQuery: timelineQuery(task, *client, *after, *limit)})
	if err != nil {
		return err
	}
	if cf.json {
		if page.Entries == nil {
			page.Entries = []projections.TimelineEntry{}
		}
		return printJSON(out, page)
	}
	printTimeline(out, page.Entries)
	if page.Next != 0 {
		fmt.Fprintf(out, "… more after --after %d\n", page.Next)
	}
	return nil
}

func timelineQuery(task, client string, after uint64, limit int) (q projections.TimelineQuery) {
	q.Task, q.Client, q.After, q.Limit = task, client, after, limit
	return q
}

func printTimeline(out io.Writer, entries []projections.TimelineEntry) {
	if len(entries) == 0 {
		fmt.Fprintln(out, "no events")
		return
	}
	entries = slices.Clone(entries)
	slices.SortStableFunc(entries, func(a, b projections.TimelineEntry) int { return a.Time.Compare(b.Time) })
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SEQ\tTIME\tSTEP\tSINCE START\tSOURCE\tAGGREGATE\tTYPE\tDETAIL")
	first, prev := entries[0].Time, entries[0].Time
	for _, e := range entries {
		fmt.Fprintf(w, "%d\t%s\t+%s\t%s\t%s\t%s/%s\t%s\t%s\n", e.Seq, e.Time.Local().Format("15:04:05.000"), latency(e.Time.Sub(prev)), latency(e.Time.Sub(first)), e.Source, e.Kind, e.Aggregate, e.Type, e.Detail)
		prev = e.Time
	}
	w.Flush()
}

// latency prints a duration with three significant digits.
func latency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}
