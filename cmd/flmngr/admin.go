package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/storage"
)

func runRebuild(args []string, out io.Writer) error {
	fs := newFlags("rebuild", "rebuild [--offline --data DIR]", "Drops every view (tasks, users, timeline) and replays it from the event\nlog. By default the running deployment does it; with --offline it is done\non a stopped deployment's data directory.")
	var cf connFlags
	cf.register(fs)
	offline := fs.Bool("offline", false, "rebuild the views of a stopped deployment in --data")
	data := fs.String("data", defaultDataDir(), "data directory of the stopped deployment (with --offline)")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	if *offline {
		return rebuildOffline(out, *data)
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	fmt.Fprintln(out, "rebuilding views…")
	r, err := c.Rebuild(context.Background())
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(out, r)
	}
	fmt.Fprintf(out, "views rebuilt from %d events in %s\n", r.Seq, r.Duration)
	return nil
}

func rebuildOffline(out io.Writer, data string) error {
	start := time.Now()
	ctx := context.Background()
	st, err := cloud.OpenStopped(ctx, data)
	if err != nil {
		return err
	}
	defer st.Close()
	fmt.Fprintf(out, "rebuilding views in %s…\n", data)
	seq, err := st.Views.RebuildOffline(ctx, st.Log)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "views rebuilt from %d events in %s\n", seq, time.Since(start).Round(time.Millisecond))
	return nil
}

func runStatus(args []string, out io.Writer) error {
	fs := newFlags("status", "status", "Shows how far the event log and the views go.")
	var cf connFlags
	cf.register(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	s, err := c.Status(context.Background())
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(out, s)
	}
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
