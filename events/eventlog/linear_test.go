package eventlog_test

import (
	"context"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
)

// The leader knows an aggregate's last event; LoadUntil reads until it
// has the event asked for, and says so when the log does not reach it.
func TestLinearizableLoads(t *testing.T) {
	ctx := context.Background()
	l := startLog(t)
	if seq, err := l.LeaderLastSeqOf(ctx, l.AggregateFilter(events.Task("a"))); err != nil || seq != 0 {
		t.Fatalf("no events yet: %d %v", seq, err)
	}
	var last uint64
	for i := range 3 {
		seq, err := l.Append(ctx, last, env(t, events.Task("a"), created("h")))
		if err != nil && i == 0 {
			t.Fatal(err)
		}
		if err == nil {
			last = seq
		}
	}
	if _, err := l.Append(ctx, 0, env(t, events.Task("b"), created("h"))); err != nil {
		t.Fatal(err)
	}
	if seq, err := l.LeaderLastSeqOf(ctx, l.AggregateFilter(events.Task("a"))); err != nil || seq != last {
		t.Fatalf("leader's last of a: %d %v, want %d", seq, err, last)
	}
	evs, err := l.LoadLatest(ctx, events.Task("a"), 0)
	if err != nil || len(evs) == 0 || evs[len(evs)-1].Seq != last {
		t.Fatalf("latest of a: %d events %v", len(evs), err)
	}
	evs, err = l.LoadUntil(ctx, events.Task("a"), 0, last)
	if err != nil || evs[len(evs)-1].Seq != last {
		t.Fatalf("until %d: %v", last, err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := l.LoadUntil(short, events.Task("a"), 0, last+100); err == nil {
		t.Fatal("an event the log does not have was found")
	}
}
