package viewstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/projections/viewstore"
)

// fill appends n events quickly (asynchronous publishes, no expected
// sequence): 1,000 tasks that start and complete rounds, and 10,000
// clients that register and keep reporting.
func fill(b *testing.B, log *eventlog.Log, n int) {
	b.Helper()
	js := log.JetStream()
	at := time.Now()
	pending := 0
	publish := func(agg events.Aggregate, p events.Payload) {
		e, err := events.New(fmt.Sprintf("e%d", pending), "bench", agg, at, p)
		if err != nil {
			b.Fatal(err)
		}
		subj, _ := log.Subject(e)
		data, _ := events.Encode(e)
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: subj, Data: data}); err != nil {
			b.Fatal(err)
		}
		pending++
		if pending%50_000 == 0 {
			<-js.PublishAsyncComplete()
		}
	}
	q := int64(0)
	for i := 0; pending < n; i++ {
		switch {
		case i < 1000:
			publish(events.Task(fmt.Sprintf("t%d", i)), &events.TaskCreated{TaskSpec: events.TaskSpec{Host: "h", Port: 1 + i, SelectionCriteria: `"camera" in sensors`, FilesPaths: []string{"client.py"}}})
		case i < 2000:
			publish(events.Task(fmt.Sprintf("t%d", i-1000)), &events.TaskStartRequested{Run: "1"})
		case i < 12000:
			publish(events.Client(fmt.Sprintf("c%d", i-2000)), &events.ClientRegistered{Attributes: events.ClientAttributes{Sensors: []string{"camera"}}})
		case i%4 == 0:
			publish(events.Task(fmt.Sprintf("t%d", i%1000)), &events.TaskRoundCompleted{Run: "1", Round: i / 1000, Metrics: map[string]float64{"accuracy": 0.9}})
		default:
			q++
			publish(events.Client(fmt.Sprintf("c%d", i%10000)), &events.ClientInfoReported{Attributes: events.ClientAttributes{Sensors: []string{"camera"}, DataQnt: q}, Changed: []string{"data_qnt"}})
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publishes not acknowledged")
	}
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
