package eventlog_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/nats-io/nats.go"
)

// A follower whose consumer is lost while JetStream does not answer (its
// server restarting, a cluster electing leaders after a node died)
// neither hangs nor stops:
// cancelled during the outage it returns at once, and a follower left
// running delivers the events appended once JetStream is back. One with
// several filters follows on after the events it had passed over, not
// from its last own one.
func TestFollowOutlivesJetStreamOutage(t *testing.T) {
	dir := t.TempDir()
	ns := jstest.Server(t, dir)
	l := jstest.Open(t, jstest.Connect(t, ns))
	ctx := context.Background()
	if _, err := l.Append(ctx, 0, env(t, events.Task("a"), created("h"))); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	defer cancel()
	got1, done1 := followSeqs(cancelled, l)
	kept, stop := context.WithCancel(ctx)
	defer stop()
	got2, done2 := followSeqs(kept, l)
	for _, got := range []<-chan uint64{got1, got2} {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the first event was not delivered")
		}
	}
	var skipped atomic.Int64
	got3 := make(chan uint64, 16)
	go func() {
		filters := []string{l.TypeFilter(events.TaskStartRequestedV1), l.TypeFilter(events.TaskDeletedV1)}
		_ = eventlog.FollowCountingSkipped(kept, l, eventlog.FollowOptions{Filters: filters}, &skipped, func(e events.Envelope) error {
			got3 <- e.Seq
			return nil
		})
	}()
	// Events the filtered follower passes over (once it follows the tail).
	for deadline := time.Now().Add(10 * time.Second); skipped.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if _, err := l.Append(ctx, 0, env(t, events.Task(fmt.Sprintf("other%d", time.Now().UnixNano())), created("h"))); err != nil {
			t.Fatal(err)
		}
		<-got1
		<-got2
		if time.Now().After(deadline) {
			t.Fatal("the filtered follower passed over nothing")
		}
	}
	const others = 20
	for i := range others {
		if _, err := l.Append(ctx, 0, env(t, events.Task(fmt.Sprintf("o%d", i)), created("h"))); err != nil {
			t.Fatal(err)
		}
		<-got1
		<-got2
	}
	for deadline := time.Now().Add(10 * time.Second); skipped.Load() < others+1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the filtered follower passed over %d events, want at least %d", skipped.Load(), others+1)
		}
	}
	before := skipped.Load()

	addr := ns.Addr().String()
	ns.Shutdown()
	ns.WaitForShutdown()
	// Long enough for the consumers to miss their heartbeats and fail to
	// be made again.
	time.Sleep(3 * eventlog.Heartbeat)
	cancel()
	returnsWithin(t, done1, 3*time.Second, "a follower cancelled while JetStream was away")

	time.Sleep(5 * time.Second)
	back, err := eventlog.StartEmbedded(eventlog.EmbeddedConfig{Dir: dir, Listen: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Shutdown(); back.WaitForShutdown() })
	var seq uint64
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var err error
		if seq, err = l.Append(ctx, 1, env(t, events.Task("a"), &events.TaskStartRequested{Run: "r"})); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("appending after JetStream came back: %v", err)
		}
	}
	select {
	case s := <-got2:
		if s != seq {
			t.Fatalf("delivered %d after the outage, want %d", s, seq)
		}
	case err := <-done2:
		t.Fatalf("the follower stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the event appended after the outage was not delivered within 30 s")
	}
	select {
	case s := <-got3:
		if s != seq {
			t.Fatalf("the filtered follower delivered %d after the outage, want %d", s, seq)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the filtered follower did not deliver the event appended after the outage")
	}
	if again := skipped.Load() - before; again > 0 {
		t.Errorf("the filtered follower, made anew, passed over %d events again", again)
	}
	stop()
	returnsWithin(t, done2, 3*time.Second, "the follower, cancelled,")
}

// A follower cancelled while its cluster has lost its quorum (two nodes of
// three gone: no consumer can be made) returns at once.
func TestFollowCancelledWithoutQuorumReturns(t *testing.T) {
	cl := jstest.NewCluster(t, 3)
	nc, err := nats.Connect(cl.Servers[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx := context.Background()
	l, err := eventlog.Open(ctx, nc, eventlog.Config{Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, 0, env(t, events.Task("a"), created("h"))); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got, done := followSeqs(fctx, l)
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the first event was not delivered")
	}
	cl.Kill(cl.Servers[1])
	cl.Kill(cl.Servers[2])
	time.Sleep(4 * eventlog.Heartbeat)
	cancel()
	returnsWithin(t, done, 3*time.Second, "a follower cancelled without a quorum")
}

// followSeqs follows the whole log until ctx ends, sending each event's
// sequence to got, and Follow's result to done.
func followSeqs(ctx context.Context, l *eventlog.Log) (got <-chan uint64, done <-chan error) {
	seqs, result := make(chan uint64, 16), make(chan error, 1)
	go func() {
		result <- l.Follow(ctx, eventlog.FollowOptions{}, func(e events.Envelope) error {
			seqs <- e.Seq
			return nil
		})
	}()
	return seqs, result
}

// returnsWithin fails t unless done yields within d.
func returnsWithin(t *testing.T, done <-chan error, d time.Duration, who string) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", who, d)
	}
}
