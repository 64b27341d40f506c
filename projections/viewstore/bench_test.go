package viewstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/projections/viewstore"
)

// fill appends n events quickly (jstest.Fill): 1,000 tasks that start
// and complete rounds, and 10,000 clients that register and keep
// reporting.
func fill(b *testing.B, log *eventlog.Log, n int) {
	b.Helper()
	q := int64(0)
	jstest.Fill(b, log, 0, n, func(i int) (events.Aggregate, events.Payload) {
		switch {
		case i < 1000:
			return events.Task(fmt.Sprintf("t%d", i)), &events.TaskCreated{TaskSpec: events.TaskSpec{Host: "h", Port: 1 + i, SelectionCriteria: `"camera" in sensors`, FilesPaths: []string{"client.py"}}}
		case i < 2000:
			return events.Task(fmt.Sprintf("t%d", i-1000)), &events.TaskStartRequested{Run: "1"}
		case i < 12000:
			return events.Client(fmt.Sprintf("c%d", i-2000)), &events.ClientRegistered{Attributes: events.ClientAttributes{Sensors: []string{"camera"}}}
		case i%4 == 0:
			return events.Task(fmt.Sprintf("t%d", i%1000)), &events.TaskRoundCompleted{Run: "1", Round: i / 1000, Metrics: map[string]float64{"accuracy": 0.9}}
		default:
			q++
			return events.Client(fmt.Sprintf("c%d", i%10000)), &events.ClientInfoReported{Attributes: events.ClientAttributes{Sensors: []string{"camera"}, DataQnt: q}, Changed: []string{"data_qnt"}}
		}
	})
}

// BenchmarkRebuild1M rebuilds every view from a stream of 1,000,000 events
// and reports the time and the rate. Skipped with -short.
func BenchmarkRebuild1M(b *testing.B) {
	if testing.Short() {
		b.Skip("1M-event rebuild skipped in -short mode")
	}
	const n = 1_000_000
	ns := jstest.Server(b, "")
	nc := jstest.Connect(b, ns)
	log := jstest.Open(b, nc)
	fillStart := time.Now()
	fill(b, log, n)
	b.Logf("appended %d events in %s", n, time.Since(fillStart).Round(time.Millisecond))

	// Reading the stream alone, for comparison.
	readStart := time.Now()
	count := 0
	if _, err := log.Replay(context.Background(), eventlog.FollowOptions{Batch: 8192}, func(events.Envelope) error { count++; return nil }); err != nil {
		b.Fatal(err)
	}
	read := time.Since(readStart)
	b.Logf("read and decoded %d events in %s", count, read.Round(time.Millisecond))

	var took time.Duration
	for b.Loop() {
		s, err := viewstore.Open(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		seq, err := s.RebuildOffline(context.Background(), log)
		took = time.Since(start)
		if err != nil || seq != n {
			b.Fatalf("rebuild: seq %d, %v", seq, err)
		}
		s.Close()
	}
	b.ReportMetric(took.Seconds(), "rebuild-s")
	b.ReportMetric(float64(n)/took.Seconds(), "events/s")
	b.ReportMetric(read.Seconds(), "read-only-s")
}
