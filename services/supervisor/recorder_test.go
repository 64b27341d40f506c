package supervisor

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// While the log cannot be reached, a run's events wait in order; adding
// never blocks; once the log is back every event is recorded, once, in
// the order it happened.
func TestRecorderOutlivesALogOutage(t *testing.T) {
	var mu sync.Mutex
	down := true
	var got []int
	rec := newRecorder(context.Background(), func(_ context.Context, p events.Payload) error {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return fault.Unavailable(errors.New("no stream leader"), "event log unavailable")
		}
		got = append(got, p.(*events.TaskRoundCompleted).Round)
		return nil
	})
	go rec.run()
	start := time.Now()
	for i := 1; i <= 1000; i++ {
		rec.add(&events.TaskRoundCompleted{Run: "1", Round: i})
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("adding 1000 events took %s while the log was down", took)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	rec.close()
	select {
	case <-rec.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the recorder did not drain once the log was back")
	}
	if len(got) != 1000 {
		t.Fatalf("%d events recorded, want 1000", len(got))
	}
	for i, r := range got {
		if r != i+1 {
			t.Fatalf("event %d is round %d: out of order", i, r)
		}
	}
}

// A refusal is final: the event is dropped and the next one goes on.
func TestRecorderMovesOnAfterARefusal(t *testing.T) {
	var got []int
	rec := newRecorder(context.Background(), func(_ context.Context, p events.Payload) error {
		r := p.(*events.TaskRoundCompleted).Round
		if r == 2 {
			return fault.Invalid("", "refused")
		}
		got = append(got, r)
		return nil
	})
	go rec.run()
	for i := 1; i <= 3; i++ {
		rec.add(&events.TaskRoundCompleted{Run: "1", Round: i})
	}
	rec.close()
	<-rec.done
	if len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("recorded %v, want [1 3]", got)
	}
}

// Past its bound, a run drops rounds, never the event that ends it.
func TestRecorderKeepsTheEndWhenFull(t *testing.T) {
	block := make(chan struct{})
	var ended bool
	rec := newRecorder(context.Background(), func(_ context.Context, p events.Payload) error {
		<-block
		if _, ok := p.(*events.TaskFinished); ok {
			ended = true
		}
		return nil
	})
	go rec.run()
	for i := range maxPending + 100 {
		rec.add(&events.TaskRoundCompleted{Run: "1", Round: i})
	}
	rec.add(&events.TaskFinished{Run: "1"})
	if rec.dropped == 0 {
		t.Fatal("nothing was dropped past the bound")
	}
	close(block)
	rec.close()
	<-rec.done
	if !ended {
		t.Fatal("the run's end was dropped")
	}
}
