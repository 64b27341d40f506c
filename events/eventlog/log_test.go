package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
)

func startLog(t testing.TB) *eventlog.Log { return jstest.Log(t) }

var n atomic.Int64

func env(t testing.TB, agg events.Aggregate, p events.Payload) events.Envelope {
	t.Helper()
	e, err := events.New(fmt.Sprintf("evt-%d", n.Add(1)), "test", agg, time.Now(), p)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func created(host string) *events.TaskCreated {
	return &events.TaskCreated{TaskSpec: events.TaskSpec{Host: host, Port: 8080}}
}

func TestAppendExpectsLastSequencePerAggregate(t *testing.T) {
	ctx := context.Background()
	l := startLog(t)
	a, b := events.Task("a"), events.Task("b")

	s1, err := l.Append(ctx, 0, env(t, a, created("h")))
	if err != nil {
		t.Fatal(err)
	}
	// A second "create" expecting an empty aggregate conflicts.
	if _, err := l.Append(ctx, 0, env(t, a, created("h"))); !errors.Is(err, events.ErrConcurrency) {
		t.Fatalf("second create: got %v, want ErrConcurrency", err)
	}
	// Another aggregate is independent.
	s2, err := l.Append(ctx, 0, env(t, b, created("h")))
	if err != nil {
		t.Fatal(err)
	}
	// Appending with the right expectation works even though the stream
	// moved on; a stale one fails.
	s3, err := l.Append(ctx, s1, env(t, a, &events.TaskStartRequested{Run: "r1"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, s1, env(t, a, &events.TaskStopRequested{Run: "r1"})); !errors.Is(err, events.ErrConcurrency) {
		t.Fatalf("stale append: got %v, want ErrConcurrency", err)
	}
	if s2 <= s1 || s3 <= s2 {
		t.Fatalf("sequences not increasing: %d %d %d", s1, s2, s3)
	}
	last, err := l.LastSeqOf(ctx, l.AggregateFilter(a))
	if err != nil || last != s3 {
		t.Fatalf("LastSeqOf(a) = %d, %v; want %d", last, err, s3)
	}
	none, err := l.LastSeqOf(ctx, l.AggregateFilter(events.Task("zzz")))
	if err != nil || none != 0 {
		t.Fatalf("LastSeqOf(unknown) = %d, %v; want 0", none, err)
	}
	got, err := l.Load(ctx, a, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != s1 || got[1].Seq != s3 || got[1].Type != events.TaskStartRequestedV1 {
		t.Fatalf("Load(a) = %+v", got)
	}
	tail, err := l.Load(ctx, a, s1)
	if err != nil || len(tail) != 1 || tail[0].Seq != s3 {
		t.Fatalf("Load(a, after %d) = %+v, %v", s1, tail, err)
	}
	empty, err := l.Load(ctx, a, s3)
	if err != nil || len(empty) != 0 {
		t.Fatalf("Load(a, after last) = %+v, %v", empty, err)
	}
}

func TestAppendDropsDuplicateEventIDs(t *testing.T) {
	ctx := context.Background()
	l := startLog(t)
	e := env(t, events.Task("a"), created("h"))
	s1, err := l.Append(ctx, 0, e)
	if err != nil {
		t.Fatal(err)
	}
	// The same event id again is a no-op that reports the original
	// sequence: expecting what the first append expected (the stream
	// checks the expectation first), as a duplicate; expecting the
	// sequence the first append produced, as the stream's duplicate
	// window answers.
	if s, err := l.Append(ctx, 0, e); !errors.Is(err, events.ErrAlreadyStored) || s != s1 {
		t.Fatalf("retry of a stored event: got %d, %v; want %d, ErrAlreadyStored", s, err, s1)
	}
	// Another event with that stale expectation is a conflict.
	if _, err := l.Append(ctx, 0, env(t, events.Task("a"), created("h"))); !errors.Is(err, events.ErrConcurrency) {
		t.Fatalf("another event with a stale expectation: got %v, want ErrConcurrency", err)
	}
	s2, err := l.Append(ctx, s1, e)
	if err != nil {
		t.Fatalf("duplicate append: %v", err)
	}
	if s1 != s2 {
		t.Fatalf("duplicate stored at %d, original at %d", s2, s1)
	}
	last, _ := l.LastSeq(ctx)
	if last != s1 {
		t.Fatalf("stream has %d events, want %d", last, s1)
	}
}

func TestAppendManyIsAtomic(t *testing.T) {
	ctx := context.Background()
	l := startLog(t)
	a := events.Task("a")
	batch := []events.Envelope{env(t, a, created("h")), env(t, a, &events.TaskStartRequested{Run: "r"}), env(t, a, &events.TaskStopRequested{Run: "r"})}
	last, err := l.Append(ctx, 0, batch...)
	if err != nil {
		t.Fatal(err)
	}
	if last != 3 {
		t.Fatalf("last = %d, want 3", last)
	}
	// The same batch again (its answer lost) reports where it stands.
	if s, err := l.Append(ctx, 0, batch...); !errors.Is(err, events.ErrAlreadyStored) || s != 3 {
		t.Fatalf("retry of a stored batch: got %d, %v; want 3, ErrAlreadyStored", s, err)
	}
	// A batch with a stale expectation stores nothing.
	if _, err := l.Append(ctx, 1, env(t, a, &events.TaskStartRequested{Run: "r2"}), env(t, a, &events.TaskStopRequested{Run: "r2"})); !errors.Is(err, events.ErrConcurrency) {
		t.Fatalf("stale batch: got %v, want ErrConcurrency", err)
	}
	if got, _ := l.LastSeq(ctx); got != 3 {
		t.Fatalf("stream has %d events after a rejected batch, want 3", got)
	}
	if _, err := l.Append(ctx, 0, env(t, a, created("h")), env(t, events.Task("b"), created("h"))); err == nil {
		t.Fatal("a batch spanning two aggregates was accepted")
	}
}

func TestFollowAndReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := startLog(t)
	for i := range 10 {
		if _, err := l.Append(ctx, 0, env(t, events.Task(fmt.Sprintf("t%d", i)), created("h"))); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	last, err := l.Replay(ctx, eventlog.FollowOptions{From: 4}, func(e events.Envelope) error {
		seqs = append(seqs, e.Seq)
		return nil
	})
	if err != nil || last != 10 || len(seqs) != 7 || seqs[0] != 4 || seqs[6] != 10 {
		t.Fatalf("Replay from 4: last=%d seqs=%v err=%v", last, seqs, err)
	}
	// Follow sees new events as they are appended and stops on a handler
	// error, returning it.
	stop := errors.New("seen enough")
	got := make(chan uint64, 20)
	errc := make(chan error, 1)
	go func() {
		errc <- l.Follow(ctx, eventlog.FollowOptions{From: 10, Filters: []string{l.TypeFilter(events.TaskStartRequestedV1), l.TypeFilter(events.TaskCreatedV1)}}, func(e events.Envelope) error {
			got <- e.Seq
			if e.Type == events.TaskStartRequestedV1 {
				return stop
			}
			return nil
		})
	}()
	if s := <-got; s != 10 {
		t.Fatalf("first followed seq = %d, want 10", s)
	}
	if _, err := l.Append(ctx, 1, env(t, events.Task("t0"), &events.TaskStartRequested{Run: "r"})); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != 11 {
		t.Fatalf("followed seq = %d, want 11", s)
	}
	if err := <-errc; !errors.Is(err, stop) {
		t.Fatalf("Follow returned %v, want the handler's error", err)
	}
}

func TestDurableHandsEachEventToOneReplica(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := startLog(t)
	const total = 200
	var mu sync.Mutex
	seen := map[uint64]int{}
	all := make(chan struct{})
	handler := func(_ context.Context, e events.Envelope) error {
		mu.Lock()
		defer mu.Unlock()
		seen[e.Seq]++
		if len(seen) == total {
			close(all)
		}
		return nil
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Durable(ctx, eventlog.DurableOptions{Name: "supervisor", Filters: []string{l.TypeFilter(events.TaskCreatedV1)}}, handler); err != nil {
				t.Error(err)
			}
		}()
	}
	for i := range total {
		if _, err := l.Append(ctx, 0, env(t, events.Task(fmt.Sprintf("t%d", i)), created("h"))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatal("not every event was delivered")
	}
	cancel()
	wg.Wait()
	for seq, count := range seen {
		if count != 1 {
			t.Errorf("event %d handled %d times", seq, count)
		}
	}
}

func TestLoadPagesThroughLongAggregates(t *testing.T) {
	ctx := context.Background()
	l := startLog(t)
	a := events.Task("long")
	last, err := l.Append(ctx, 0, env(t, a, created("h")))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1300 {
		// Interleave another aggregate so the filter matters.
		if _, err := l.Append(ctx, 0, env(t, events.Task(fmt.Sprintf("other%d", i)), created("h"))); err != nil {
			t.Fatal(err)
		}
		if last, err = l.Append(ctx, last, env(t, a, &events.TaskRoundCompleted{Run: "1", Round: i})); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.Load(ctx, a, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1301 || got[1300].Seq != last {
		t.Fatalf("loaded %d events, last at %d; want 1301 ending at %d", len(got), got[len(got)-1].Seq, last)
	}
	for i := 1; i < len(got); i++ {
		if got[i].Event.(*events.TaskRoundCompleted).Round != i-1 {
			t.Fatalf("event %d out of order", i)
		}
	}
	e, ok, err := l.LastEvent(ctx, l.AggregateFilter(a))
	if err != nil || !ok || e.Seq != last {
		t.Fatalf("LastEvent = %d %v %v", e.Seq, ok, err)
	}
	if _, ok, err := l.LastEvent(ctx, l.AggregateFilter(events.Task("none"))); ok || err != nil {
		t.Fatalf("LastEvent of nothing: %v %v", ok, err)
	}
}

func TestStoredEventsAreRepublishedLive(t *testing.T) {
	ctx := context.Background()
	l := startLog(t)
	c := events.Client("c1")
	filter := l.TypeFilter(events.ClientOffersChangedV1)
	sub, err := l.Conn().SubscribeSync(l.LiveSubject(filter))
	if err != nil {
		t.Fatal(err)
	}
	s1, err := l.Append(ctx, 0, env(t, c, &events.ClientRegistered{}))
	if err != nil {
		t.Fatal(err)
	}
	s2, err := l.Append(ctx, s1, env(t, c, &events.ClientOffersChanged{Cause: "a"}))
	if err != nil {
		t.Fatal(err)
	}
	// A rejected append is not republished.
	if _, err := l.Append(ctx, s1, env(t, c, &events.ClientOffersChanged{Cause: "stale"})); !errors.Is(err, events.ErrConcurrency) {
		t.Fatal(err)
	}
	s3, err := l.Append(ctx, s2, env(t, c, &events.ClientOffersChanged{Cause: "b"}))
	if err != nil {
		t.Fatal(err)
	}
	var prev uint64
	for _, want := range []uint64{s2, s3} {
		msg, err := sub.NextMsg(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		live, err := eventlog.ParseLive(msg)
		if err != nil {
			t.Fatal(err)
		}
		if live.Event.Seq != want || live.PrevSeq != prev {
			t.Fatalf("live event %d (prev %d), want %d (prev %d)", live.Event.Seq, live.PrevSeq, want, prev)
		}
		prev = live.Event.Seq
	}
	if msg, err := sub.NextMsg(100 * time.Millisecond); err == nil {
		t.Fatalf("unexpected live event %s", msg.Data)
	}
}

// A follow with several filters delivers exactly the events they match,
// in log order, however many others stand between them.
func TestFollowWithSeveralFiltersDeliversOnlyTheirs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := startLog(t)
	appendMixed := func(from int) (want []uint64) {
		t.Helper()
		for i := from; i < from+30; i++ {
			task := events.Task(fmt.Sprintf("t%d", i))
			taskSeq, err := l.Append(ctx, 0, env(t, task, created("h")))
			if err != nil {
				t.Fatal(err)
			}
			client := events.Client(fmt.Sprintf("c%d", i))
			seq, err := l.Append(ctx, 0, env(t, client, &events.ClientRegistered{}))
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, seq)
			if _, err := l.Append(ctx, seq, env(t, client, &events.ClientInfoReported{})); err != nil {
				t.Fatal(err)
			}
			if i%3 == 0 {
				seq, err := l.Append(ctx, taskSeq, env(t, task, &events.TaskStartRequested{Run: "r"}))
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, seq)
			}
		}
		return want
	}
	want := appendMixed(0)
	got := make(chan uint64, 100)
	errc := make(chan error, 1)
	go func() {
		filters := []string{l.TypeFilter(events.ClientRegisteredV1), l.TypeFilter(events.TaskStartRequestedV1)}
		errc <- l.Follow(ctx, eventlog.FollowOptions{From: 1, Filters: filters}, func(e events.Envelope) error {
			if e.Type != events.ClientRegisteredV1 && e.Type != events.TaskStartRequestedV1 {
				return fmt.Errorf("delivered %s at %d", e.Type, e.Seq)
			}
			got <- e.Seq
			return nil
		})
	}()
	want = append(want, appendMixed(30)...)
	for i, w := range want {
		select {
		case s := <-got:
			if s != w {
				t.Fatalf("event %d: followed seq %d, want %d", i, s, w)
			}
		case err := <-errc:
			t.Fatalf("Follow returned %v after %d of %d events", err, i, len(want))
		case <-ctx.Done():
			t.Fatalf("%d of %d events followed", i, len(want))
		}
	}
	select {
	case s := <-got:
		t.Fatalf("followed seq %d, past what the filters match", s)
	case <-time.After(200 * time.Millisecond):
	}
}

// A replay with several filters ends at the last event they match, even
// when later events match none of them (it waited for the next matching
// event before: a cloud restarted on such a log had its matcher and
// revoker wait).
func TestReplayWithSeveralFiltersEndsAtTheirLastEvent(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l := startLog(t)
	if _, err := l.Append(ctx, 0, env(t, events.Task("t"), created("h"))); err != nil {
		t.Fatal(err)
	}
	registered, err := l.Append(ctx, 0, env(t, events.Client("c"), &events.ClientRegistered{}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, registered, env(t, events.Client("c"), &events.ClientInfoReported{})); err != nil {
		t.Fatal(err)
	}
	filters := []string{l.TypeFilter(events.TaskCreatedV1), l.TypeFilter(events.ClientRegisteredV1)}
	var seqs []uint64
	last, err := l.Replay(ctx, eventlog.FollowOptions{Filters: filters}, func(e events.Envelope) error {
		seqs = append(seqs, e.Seq)
		return nil
	})
	if err != nil || last != registered || !slices.Equal(seqs, []uint64{1, registered}) {
		t.Fatalf("Replay: last=%d seqs=%v err=%v; want last=%d seqs=[1 %d]", last, seqs, err, registered, registered)
	}
	// Nothing matches: nothing to wait for.
	last, err = l.Replay(ctx, eventlog.FollowOptions{Filters: []string{l.TypeFilter(events.TaskDeletedV1), l.TypeFilter(events.ClientKeyIssuedV1)}}, func(e events.Envelope) error {
		return fmt.Errorf("delivered %s", e.Type)
	})
	if err != nil || last != 0 {
		t.Fatalf("Replay of what nothing matches: last=%d err=%v", last, err)
	}
}

// A follow with several filters from far back lets JetStream pick their
// events up to the stream's end, and reads only the tail with their
// common prefix: a follower of rare events reads none of the others
// stored before it started.
func TestFollowWithSeveralFiltersCatchesUpOnTheServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l := startLog(t)
	first, err := l.Append(ctx, 0, env(t, events.Client("c0"), &events.ClientRegistered{}))
	if err != nil {
		t.Fatal(err)
	}
	const others = 300
	for i := range others {
		if _, err := l.Append(ctx, 0, env(t, events.Client(fmt.Sprintf("o%d", i)), &events.ClientInfoReported{})); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan uint64, 10)
	var skipped atomic.Int64
	filters := []string{l.TypeFilter(events.ClientRegisteredV1), l.TypeFilter(events.ClientKeyIssuedV1)}
	go func() {
		_ = eventlog.FollowCountingSkipped(ctx, l, eventlog.FollowOptions{From: 1, Filters: filters}, &skipped, func(e events.Envelope) error {
			got <- e.Seq
			return nil
		})
	}()
	if s := <-got; s != first {
		t.Fatalf("followed %d first, want %d", s, first)
	}
	// Another client event, then a matching one: the tail follow reads
	// the first and passes it over.
	if _, err := l.Append(ctx, 0, env(t, events.Client("late"), &events.ClientInfoReported{})); err != nil {
		t.Fatal(err)
	}
	next, err := l.Append(ctx, 0, env(t, events.Client("c1"), &events.ClientRegistered{}))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s != next {
			t.Fatalf("followed %d, want %d", s, next)
		}
	case <-ctx.Done():
		t.Fatal("the registration after the start was not followed")
	}
	if n := skipped.Load(); n > 1 {
		t.Fatalf("the tail follow read and passed over %d events, want at most 1 (the %d before it started are JetStream's to skip)", n, others)
	}
}
