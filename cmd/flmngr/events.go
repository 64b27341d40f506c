package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/api"
)

func runEvents(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("events", "events [--follow] [--since SEQ] [--task ID | --client ID] [--json]", "Prints events straight from the log, oldest first. With --follow it keeps\nprinting new events until interrupted.")
	follow := fs.Bool("follow", false, "keep printing new events")
	since := fs.Uint64("since", 0, "start after this stream sequence")
	task := fs.String("task", "", "only events of this task")
	client := fs.String("client", "", "only events of this client")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *task != "" && *client != "" {
		return fmt.Errorf("%w: --task and --client are exclusive", errUsage)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if !cf.json {
		fmt.Fprintln(w, "SEQ\tTIME\tSOURCE\tAGGREGATE\tTYPE\tDETAIL")
	}
	req := api.EventsRequest{After: *since, Task: *task, Client: *client}
	if *follow {
		req.WaitMS = cf.followWaitMS()
	}
	return followPages(cf, out, *follow, func(ctx context.Context, c *api.Client) ([]events.Envelope, error) {
		evs, next, err := c.Events(ctx, req)
		req.After = next
		return evs, err
	}, func(e events.Envelope) any { return wireEvent{Seq: e.Seq, Envelope: e} }, func(e events.Envelope) {
		t := projections.Entry(e)
		fmt.Fprintf(w, "%d\t%s\t%s\t%s/%s\t%s\t%s\n", e.Seq, e.Time.Local().Format("15:04:05.000000"), e.Source, e.Aggregate.Kind, e.Aggregate.ID, e.Type, t.Detail)
	}, w.Flush)
}

// wireEvent is an envelope with its stream sequence, as --json prints it.
type wireEvent struct {
	Seq uint64 `json:"seq"`
	events.Envelope
}

func runTimeline(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("timeline", "timeline [TASK] [--client ID] [--after SEQ] [--limit N]", "Prints the timeline of a task (its events and what clients did with it),\nof a client, or of everything, with the time since the previous step, since\nthe first, and from when the event's component sent it to when the log\nrecorded it (INTO LOG).")
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
	return operate(cf, out, func(ctx context.Context, c *api.Client) (api.TimelineReply, error) {
		page, err := c.Timeline(ctx, api.TimelineRequest{TimelineQuery: timelineQuery(task, *client, *after, *limit)})
		if page.Entries == nil {
			page.Entries = []projections.TimelineEntry{}
		}
		return page, err
	}, func(out io.Writer, page api.TimelineReply) error {
		printTimeline(out, page.Entries)
		if page.Next != 0 {
			fmt.Fprintf(out, "… more after --after %d\n", page.Next)
		}
		return nil
	})
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
	fmt.Fprintln(w, "SEQ\tTIME\tSTEP\tSINCE START\tINTO LOG\tSOURCE\tAGGREGATE\tTYPE\tDETAIL")
	first, prev := entries[0].Time, entries[0].Time
	for _, e := range entries {
		intoLog := "—"
		if e.Sent != nil {
			intoLog = latency(e.Time.Sub(*e.Sent))
		}
		fmt.Fprintf(w, "%d\t%s\t+%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\n", e.Seq, e.Time.Local().Format("15:04:05.000"), latency(e.Time.Sub(prev)), latency(e.Time.Sub(first)), intoLog, e.Source, e.Kind, e.Aggregate, e.Type, e.Detail)
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
