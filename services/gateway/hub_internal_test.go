package gateway

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/services/metrics"
	"github.com/flmngr/flmngr/services/testkit"
)

func testHubs(t *testing.T) (*hubs, *eventlog.Log, *metrics.Metrics) {
	t.Helper()
	log := jstest.Log(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := metrics.New(nil)
	return newHubs(ctx, log.JetStream(), log.Conn(), slog.New(slog.DiscardHandler), m), log, m
}

// seqFeed renders a message as its sequence.
func seqFeed(log *eventlog.Log) feed {
	return feed{kind: "test", stream: log.Config().Stream, filter: log.EventsFilter(), render: func(seq uint64, _ []byte) []byte {
		return strconv.AppendUint(nil, seq, 10)
	}}
}

// publish appends n events to the log.
func publish(t *testing.T, log *eventlog.Log, n int) {
	t.Helper()
	js := log.JetStream()
	for i := range n {
		env, _ := events.New(fmt.Sprintf("e%d-%d", time.Now().UnixNano(), i), "test", events.Client(fmt.Sprintf("c%d", i%7)), time.Now(),
			&events.ClientInfoReported{Attributes: events.ClientAttributes{DataQnt: int64(i)}, Changed: []string{"data_qnt"}})
		subj, _ := log.Subject(env)
		data, _ := events.Encode(env)
		if _, err := js.PublishAsync(subj, data); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("publishing did not complete")
	}
}

// readUntil reads a subscription, history first, until it has the
// message with sequence until.
func readUntil(ctx context.Context, s *subscription, until uint64) ([]uint64, error) {
	var got []uint64
	err := s.readHistory(ctx, func(m sseMsg) error {
		got = append(got, m.seq)
		return nil
	})
	if err != nil {
		return got, err
	}
	buf := make([]sseMsg, 0, readBatch)
	for len(got) == 0 || got[len(got)-1] < until {
		msgs, wake, err := s.next(buf)
		if err != nil {
			return got, err
		}
		for _, m := range msgs {
			if string(m.text) != strconv.FormatUint(m.seq, 10) {
				return got, fmt.Errorf("message %d rendered as %q", m.seq, m.text)
			}
			got = append(got, m.seq)
		}
		if len(msgs) == 0 {
			select {
			case <-wake:
			case <-ctx.Done():
				return got, ctx.Err()
			}
		}
	}
	return got, nil
}

// TestHubSubscribersGetEveryMessageOnceInOrder joins 200 subscribers to
// one feed while messages are appended: from now on, from the start of
// the stream (older than the hub: read with direct gets), and from
// sequences the ring holds. Each gets every message from where it asked
// to the end, once, in order, and they all share one consumer.
func TestHubSubscribersGetEveryMessageOnceInOrder(t *testing.T) {
	hs, log, _ := testHubs(t)
	const history, live = 50, 1000
	publish(t, log, history)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, err := hs.join(ctx, seqFeed(log), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer first.leave()
	const until = history + live
	published := make(chan struct{})
	go func() {
		defer close(published)
		publish(t, log, live)
	}()
	type result struct {
		from uint64
		got  []uint64
		err  error
	}
	results := make([]result, 200)
	var wg sync.WaitGroup
	for i := range results {
		var from uint64
		switch i % 4 {
		case 1:
			from = 1
		case 2:
			from = 20
		case 3:
			from = first.h.position() // whatever the hub has reached
		}
		s, err := hs.join(ctx, seqFeed(log), from)
		if err != nil {
			t.Fatal(err)
		}
		if from == 0 { // from the ring's next message
			s.h.mu.RLock()
			from = s.h.pos + 1
			if s.cursor < s.h.head {
				from = s.h.ring[s.cursor%ringSize].seq
			}
			s.h.mu.RUnlock()
		}
		results[i].from = from
		wg.Go(func() {
			defer s.leave()
			results[i].got, results[i].err = readUntil(ctx, s, until)
		})
	}
	if n := hs.active(); n != 1 {
		t.Fatalf("%d hubs for one feed", n)
	}
	wg.Wait()
	<-published
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("subscriber %d: %v", i, r.err)
		}
		for k, seq := range r.got {
			if seq != r.from+uint64(k) {
				t.Fatalf("subscriber %d from %d: message %d is %d (%v…): a gap or a duplicate", i, r.from, k, seq, r.got[:min(len(r.got), k+3)])
			}
		}
		if last := r.got[len(r.got)-1]; last != until {
			t.Fatalf("subscriber %d ended at %d", i, last)
		}
	}
}

// TestHubDropsAStalledSubscriber: a subscriber that reads nothing while
// more than ringSize messages arrive is told it lagged, and one that
// reads meanwhile gets them all: nobody waits for the stalled one.
func TestHubDropsAStalledSubscriber(t *testing.T) {
	hs, log, _ := testHubs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stalled, err := hs.join(ctx, seqFeed(log), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.leave()
	reader, err := hs.join(ctx, seqFeed(log), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.leave()
	done := make(chan error, 1)
	go func() {
		got, err := readUntil(ctx, reader, ringSize+100)
		if err == nil && len(got) != ringSize+100 {
			err = fmt.Errorf("got %d messages", len(got))
		}
		done <- err
	}()
	publish(t, log, ringSize+100)
	if err := <-done; err != nil {
		t.Fatalf("the reading subscriber: %v", err)
	}
	if _, _, err := stalled.next(make([]sseMsg, 0, readBatch)); err != errLagged {
		t.Fatalf("the stalled subscriber: %v, want errLagged", err)
	}
}

// TestHubStopsWithItsLastSubscriber: a feed's hub and its consumer last
// as long as it has subscribers; another feed has a hub of its own.
func TestHubStopsWithItsLastSubscriber(t *testing.T) {
	hs, log, m := testHubs(t)
	ctx := context.Background()
	other := seqFeed(log)
	other.filter = log.AggregateFilter(events.Client("c1"))
	var subs []*subscription
	for _, f := range []feed{seqFeed(log), seqFeed(log), seqFeed(log), other} {
		s, err := hs.join(ctx, f, 0)
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if n := hs.active(); n != 2 {
		t.Fatalf("%d hubs for two feeds", n)
	}
	waitFollowers(t, m, 2)
	for _, s := range subs {
		s.leave()
	}
	if n := hs.active(); n != 0 {
		t.Fatalf("%d hubs without subscribers", n)
	}
	waitFollowers(t, m, 0)
}

// waitFollowers polls the followers gauge until it is n.
func waitFollowers(t *testing.T, m *metrics.Metrics, n int) {
	t.Helper()
	want := fmt.Sprintf("flmngr_http_stream_followers %d\n", n)
	if !testkit.Until(10*time.Second, func() bool {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		b, _ := io.ReadAll(rec.Body)
		return strings.Contains(string(b), want)
	}) {
		t.Fatalf("followers never became %d", n)
	}
}

// TestHubOpenFailureIsAnError: a feed whose stream cannot be followed
// fails the join (the gateway answers it with an error, not with a
// stream) and leaves no hub behind.
func TestHubOpenFailureIsAnError(t *testing.T) {
	hs, log, _ := testHubs(t)
	f := seqFeed(log)
	f.stream = "NO_SUCH_STREAM"
	_, err := hs.join(context.Background(), f, 0)
	if fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("joining a missing stream: %v", err)
	}
	if n := hs.active(); n != 0 {
		t.Fatalf("%d hubs after a failed join", n)
	}
}
