package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/flmngr/flmngr/events"
)

// AppendEach stores each event whose expected sequence is right, refuses
// each other one as a conflict, and tells an event already stored.
func TestAppendEachDecidesEachEventOnItsOwn(t *testing.T) {
	ctx := context.Background()
	l := startLog(t)
	a, b, c := events.Task("a"), events.Task("b"), events.Task("c")
	sa, err := l.Append(ctx, 0, env(t, a, created("h")))
	if err != nil {
		t.Fatal(err)
	}
	again := env(t, c, created("h"))
	sc, err := l.Append(ctx, 0, again)
	if err != nil {
		t.Fatal(err)
	}
	envs := []events.Envelope{
		env(t, a, &events.TaskStartRequested{Run: "1"}), // right: after sa
		env(t, b, created("h")),                         // right: b is new
		env(t, a, &events.TaskStopRequested{Run: "1"}),  // wrong: a moved on by the first
		again, // already stored
	}
	seqs, errs := l.AppendEach(ctx, []uint64{sa, 0, sa, sc - 1}, envs)
	if errs[0] != nil || errs[1] != nil || seqs[0] <= sc || seqs[1] <= sc || seqs[0] == seqs[1] {
		t.Fatalf("the right expectations: seqs %v, errs %v", seqs[:2], errs[:2])
	}
	if !errors.Is(errs[2], events.ErrConcurrency) {
		t.Fatalf("a wrong expectation: %v, want a conflict", errs[2])
	}
	if !errors.Is(errs[3], events.ErrConcurrency) && !errors.Is(errs[3], events.ErrAlreadyStored) {
		t.Fatalf("an event stored already: %v", errs[3])
	}
	got, err := l.Load(ctx, a, 0)
	if err != nil || len(got) != 2 || got[1].ID != envs[0].ID {
		t.Fatalf("a holds %+v, %v; want created and the start", got, err)
	}
}

// BenchmarkAppendEach appends one event to each of many new aggregates.
func BenchmarkAppendEach(b *testing.B) {
	ctx := context.Background()
	l := startLog(b)
	const n = 4096
	round := 0
	for b.Loop() {
		round++
		envs, expected := make([]events.Envelope, n), make([]uint64, n)
		for i := range envs {
			envs[i] = env(b, events.Client(fmt.Sprintf("c%d-%d", round, i)), &events.ClientRegistered{})
		}
		_, errs := l.AppendEach(ctx, expected, envs)
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

// Callers appending at once on one connection, more than nats.go lets
// wait for acknowledgements, still have every event stored.
func TestAppendEachConcurrently(t *testing.T) {
	ctx := context.Background()
	l := startLog(t)
	const callers, each = 6, 1500
	var wg sync.WaitGroup
	failed := make(chan error, callers*each)
	for c := range callers {
		wg.Go(func() {
			envs, expected := make([]events.Envelope, each), make([]uint64, each)
			for i := range envs {
				envs[i] = env(t, events.Client(fmt.Sprintf("c%d-%d", c, i)), &events.ClientRegistered{})
			}
			_, errs := l.AppendEach(ctx, expected, envs)
			for _, err := range errs {
				if err != nil {
					failed <- err
				}
			}
		})
	}
	wg.Wait()
	close(failed)
	n := 0
	for err := range failed {
		if n++; n == 1 {
			t.Errorf("first of the refused appends: %v", err)
		}
	}
	if n > 0 {
		t.Fatalf("%d of %d appends refused", n, callers*each)
	}
}
