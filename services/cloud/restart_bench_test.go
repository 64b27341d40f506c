package cloud_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
)

// benchEvents is how many events BenchmarkRestart fills the log with:
// $FLMNGR_BENCH_EVENTS, 1,000,000 by default.
func benchEvents(b *testing.B) int {
	n := 1_000_000
	if v := os.Getenv("FLMNGR_BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 20_000 {
			b.Fatalf("FLMNGR_BENCH_EVENTS=%q: a whole number of at least 20000", v)
		}
	}
	return n
}

// publishEvents appends n events to the cloud's log (jstest.Fill): 1,000
// tasks created, 10,000 clients registered, then clients reporting
// changed attributes. from numbers the events.
func publishEvents(b *testing.B, c *cloud.Cloud, from, n int) {
	b.Helper()
	jstest.Fill(b, c.Log, from, n, func(i int) (events.Aggregate, events.Payload) {
		switch {
		case i < 1000:
			return events.Task(fmt.Sprintf("t%d", i)), &events.TaskCreated{TaskSpec: events.TaskSpec{Host: "h", Port: 1 + i, SelectionCriteria: `"camera" in sensors`, FilesPaths: []string{"client.py"}}}
		case i < 11_000:
			return events.Client(fmt.Sprintf("c%d", i-1000)), &events.ClientRegistered{Attributes: events.ClientAttributes{Sensors: []string{"camera"}}}
		default:
			return events.Client(fmt.Sprintf("c%d", i%10_000)), &events.ClientInfoReported{Attributes: events.ClientAttributes{Sensors: []string{"camera"}, DataQnt: int64(i)}, Changed: []string{"data_qnt"}}
		}
	})
}

// caughtUp waits until the views have applied the whole log and returns
// the log's last sequence.
func caughtUp(b *testing.B, op *api.Client) uint64 {
	b.Helper()
	for {
		st, err := op.Status(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st.ViewsSeq >= st.StreamSeq {
			return st.StreamSeq
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// BenchmarkRestart fills a cloud's log with FLMNGR_BENCH_EVENTS events
// (1M by default; 10M is the scale figure), then measures what a
// long-lived cloud costs: a restart until its first query that sees the
// whole log is answered, and a rebuild of the views from their snapshot
// and the events after it (10,000) against one from the start of the
// log. Skipped with -short.
func BenchmarkRestart(b *testing.B) {
	if testing.Short() {
		b.Skip("filling a log with a million events is skipped in -short mode")
	}
	n := benchEvents(b)
	dir := filepath.Join(b.TempDir(), "data")
	ctx := context.Background()
	open := func() (*cloud.Cloud, *api.Client) {
		c, err := cloud.Open(ctx, cloud.Config{DataDir: dir, Listen: "127.0.0.1:0", Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		return c, api.NewClient(c.Conn(), time.Minute)
	}
	c, op := open()
	start := time.Now()
	publishEvents(b, c, 0, n)
	filled := time.Since(start)
	last := caughtUp(b, op)
	b.Logf("%d events appended in %s; views caught up %s later", last, filled.Round(time.Millisecond), (time.Since(start) - filled).Round(time.Millisecond))
	c.Close()

	var restart, full, fromSnap time.Duration
	for b.Loop() {
		start := time.Now()
		c, op = open()
		if _, err := op.TasksPage(ctx, api.ListTasksRequest{Limit: 1, Consistency: api.Consistency{Latest: true}}); err != nil {
			b.Fatal(err)
		}
		restart = time.Since(start)

		publishEvents(b, c, n, 10_000)
		caughtUp(b, op)
		start = time.Now()
		if _, err := op.Rebuild(ctx); err != nil {
			b.Fatal(err)
		}
		fromSnap = time.Since(start)
		st, err := op.Status(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if st.SnapshotSeq == 0 || st.RebuildEvents > 20_000 {
			b.Fatalf("the rebuild did not start from the snapshot: %+v", st)
		}
		removeSnapshots(b, dir)
		start = time.Now()
		if _, err := op.Rebuild(ctx); err != nil {
			b.Fatal(err)
		}
		full = time.Since(start)
		c.Close()
		n += 10_000
	}
	b.ReportMetric(float64(last), "events")
	b.ReportMetric(restart.Seconds(), "restart-first-query-s")
	b.ReportMetric(fromSnap.Seconds(), "rebuild-snapshot-s")
	b.ReportMetric(full.Seconds(), "rebuild-full-s")
	b.ReportMetric(full.Seconds()/fromSnap.Seconds(), "snapshot-speedup-x")
}

// removeSnapshots deletes the views' snapshots under dir, so that the
// next rebuild replays the whole log.
func removeSnapshots(b *testing.B, dir string) {
	b.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && strings.HasPrefix(d.Name(), "snapshot-") {
			if err := os.RemoveAll(path); err != nil {
				return err
			}
			return filepath.SkipDir
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}
