package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
)

// TestAppendSurvivesLosingANode appends one event after another to a
// three-replica log while the node its connection is on, or the stream's
// leader, shuts down: every append succeeds, and the stream holds each
// event once, at the sequence its append returned.
func TestAppendSurvivesLosingANode(t *testing.T) {
	for _, victim := range []string{"connection", "leader"} {
		t.Run(victim, func(t *testing.T) {
			cl := jstest.NewCluster(t, 3)
			nc := cl.Connect(t, nats.DontRandomize())
			ctx := context.Background()
			l, err := eventlog.Open(ctx, nc, eventlog.Config{Replicas: 3})
			if err != nil {
				t.Fatal(err)
			}
			node := cl.Node(nc)
			if victim == "leader" {
				node = cl.StreamLeader(l.Config().Stream)
			}
			const total, killAt = 60, 20
			agg := events.Task("a")
			seqs := map[string]uint64{}
			var last uint64
			var killed time.Time
			var after time.Duration
			for i := range total {
				if i == killAt {
					killed = time.Now()
					cl.Kill(node)
				}
				var p events.Payload = &events.TaskStopRequested{Run: "1"}
				if i == 0 {
					p = created("h")
				}
				e := env(t, agg, p)
				seq, err := l.Append(ctx, last, e)
				if err != nil {
					t.Fatalf("append %d, %s after %s was shut down: %v", i, time.Since(killed), node.Name(), err)
				}
				if i == killAt {
					after = time.Since(killed)
				}
				seqs[e.ID], last = seq, seq
			}
			t.Logf("first append after %s (%s) shut down took %s", node.Name(), victim, after.Round(time.Millisecond))
			stored := readThrough(t, l, last)
			if len(stored) != total {
				t.Errorf("%d events stored, want %d", len(stored), total)
			}
			for id, seq := range seqs {
				if stored[id] != seq {
					t.Errorf("event %s appended at %d, stored at %d", id, seq, stored[id])
				}
			}
		})
	}
}

// readThrough reads the stream from the start through sequence last and
// returns the sequence of every event id; an id stored twice fails. A
// cluster that just lost a node may not take a new consumer at once.
func readThrough(t *testing.T, l *eventlog.Log, last uint64) map[string]uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	errDone := errors.New("done")
	for {
		stored := map[string]uint64{}
		err := l.Follow(context.Background(), eventlog.FollowOptions{}, func(e events.Envelope) error {
			if _, dup := stored[e.ID]; dup {
				return fmt.Errorf("event %s stored twice", e.ID)
			}
			stored[e.ID] = e.Seq
			if e.Seq >= last {
				return errDone
			}
			return nil
		})
		switch {
		case errors.Is(err, errDone):
			return stored
		case errors.Is(err, context.DeadlineExceeded) && time.Now().Before(deadline):
			continue
		}
		t.Fatalf("read the stream through %d: %v", last, err)
	}
}
