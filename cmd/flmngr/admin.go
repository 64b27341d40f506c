package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/storage"
)

func runRebuild(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("rebuild", "rebuild [--offline --data DIR]", "Drops every view (tasks, users, timeline) and replays it from the event\nlog. By default the running deployment does it; with --offline it is done\non a stopped deployment's data directory.")
	offline := fs.Bool("offline", false, "rebuild the views of a stopped deployment in --data")
	data := fs.String("data", defaultDataDir(), "data directory of the stopped deployment (with --offline)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *offline {
		start := time.Now()
		fmt.Fprintf(out, "rebuilding views in %s…\n", *data)
		seq, err := cloud.RebuildStopped(context.Background(), *data)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "views rebuilt from %d events in %s\n", seq, time.Since(start).Round(time.Millisecond))
		return nil
	}
	if !cf.json {
		fmt.Fprintln(out, "rebuilding views…")
	}
	return operate(cf, out, func(ctx context.Context, c *api.Client) (api.RebuildReply, error) { return c.Rebuild(ctx) },
		func(out io.Writer, r api.RebuildReply) error {
			_, err := fmt.Fprintf(out, "views rebuilt from %d events in %s\n", r.Seq, r.Duration)
			return err
		})
}

func runStatus(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("status", "status", "Shows how far the event log and the views go.")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return operate(cf, out, func(ctx context.Context, c *api.Client) (api.StatusReply, error) { return c.Status(ctx) }, printStatus)
}

func printStatus(out io.Writer, s api.StatusReply) error {
	fmt.Fprintf(out, "events in log:  %d\nviews applied:  %d\ntasks:          %d\nusers:          %d\n", s.StreamSeq, s.ViewsSeq, s.Tasks, s.Clients)
	if s.StreamBytes > 0 {
		fmt.Fprintf(out, "log size:       %s\n", storage.Bytes(s.StreamBytes))
	}
	if s.SnapshotTaken != nil {
		fmt.Fprintf(out, "views snapshot: at event %d, %s old (a rebuild reads the %d events after it)\n", s.SnapshotSeq, time.Since(*s.SnapshotTaken).Round(time.Second), s.StreamSeq-min(s.SnapshotSeq, s.StreamSeq))
	} else {
		fmt.Fprintf(out, "views snapshot: none yet (a rebuild reads all %d events)\n", s.StreamSeq)
	}
	if s.RebuildTook != "" {
		fmt.Fprintf(out, "last rebuild:   read %d events in %s\n", s.RebuildEvents, s.RebuildTook)
		fmt.Fprintf(out, "rebuild now:    about %s\n", s.RebuildEstimate)
	} else {
		fmt.Fprintf(out, "rebuild now:    not measured yet (flmngr rebuild measures it)\n")
	}
	if s.StorageLow {
		fmt.Fprintf(out, "ALARM: the cloud's data volume has %s free, below its watermark: commands are refused until space is freed\n", storage.Bytes(s.DataVolumeFree))
	}
	if s.DeadLetters > 0 {
		d := s.LastDeadLetter
		fmt.Fprintf(out, "ALARM: %d messages of the log are no readable event and were set aside (the last at sequence %d: %s)\n", s.DeadLetters, d.Seq, d.Error)
	}
	return nil
}
