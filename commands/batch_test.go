package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// A batch is decided in order, on the state each command leaves, and
// stored in one append; a refused command changes nothing and the others
// go in; the batch sent again appends nothing.
func TestExecuteBatch(t *testing.T) {
	ctx := context.Background()
	log := openLog(t)
	h := commands.NewHandler(log, commands.Config{HashPassword: fastHash})
	if _, err := h.Execute(ctx, commands.RegisterClient{ClientID: "c1"}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	task := func(kind string) commands.ReportClientTask {
		return commands.ReportClientTask{ClientID: "c1", Kind: kind, TaskID: "E", Run: "1"}
	}
	items := []commands.Keyed{
		{Cmd: task(commands.ClientTaskStarted), Key: "k1", RequestedAt: at},
		{Cmd: task("bogus"), Key: "k2"},
		// Decided on the state the first left: the run is running, so
		// a second start is nothing and a stop is something.
		{Cmd: task(commands.ClientTaskStarted), Key: "k3"},
		{Cmd: task(commands.ClientTaskStopped), Key: "k4", RequestedAt: at.Add(time.Millisecond)},
	}
	before, _ := log.LastSeq(ctx)
	res, errs, err := h.ExecuteBatch(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	if errs[0] != nil || fault.KindOf(errs[1]) != fault.KindInvalid || errs[2] != nil || errs[3] != nil {
		t.Fatalf("errors %v", errs)
	}
	if len(res[0].Events) != 1 || len(res[2].Events) != 0 || len(res[3].Events) != 1 {
		t.Fatalf("results %+v", res)
	}
	if res[0].Seq != before+1 || res[3].Seq != before+2 {
		t.Fatalf("sequences %d %d after %d", res[0].Seq, res[3].Seq, before)
	}
	evs, err := log.Load(ctx, events.Client("c1"), before)
	if err != nil || len(evs) != 2 {
		t.Fatalf("stored %d events: %v", len(evs), err)
	}
	if evs[0].Type != events.ClientTaskStartedV1 || evs[1].Type != events.ClientTaskStoppedV1 {
		t.Fatalf("stored %s, %s", evs[0].Type, evs[1].Type)
	}
	if evs[0].RequestedAt == nil || !evs[0].RequestedAt.Equal(at) || !evs[1].RequestedAt.Equal(at.Add(time.Millisecond)) {
		t.Fatalf("requested at %v, %v", evs[0].RequestedAt, evs[1].RequestedAt)
	}
	// Sent again (its reply was lost): nothing new, the same sequences,
	// from this handler's cache and from a fresh one reading the log.
	for _, hh := range []*commands.Handler{h, commands.NewHandler(log, commands.Config{})} {
		again, _, err := hh.ExecuteBatch(ctx, items)
		if err != nil {
			t.Fatal(err)
		}
		if !again[0].Replayed || again[0].Seq != res[0].Seq || !again[3].Replayed || again[3].Seq != res[3].Seq {
			t.Fatalf("replayed batch %+v", again)
		}
	}
	if last, _ := log.LastSeq(ctx); last != before+2 {
		t.Fatalf("log at %d, want %d", last, before+2)
	}
	// A batch is of one aggregate.
	if _, _, err := h.ExecuteBatch(ctx, []commands.Keyed{{Cmd: task(commands.ClientTaskRunning)}, {Cmd: commands.ReportClientTask{ClientID: "c2", Kind: "running", TaskID: "E", Run: "1"}}}); fault.KindOf(err) != fault.KindInvalid {
		t.Fatalf("batch over two clients: %v", err)
	}
}

// A batch decided on a state another handler has moved on from is
// decided again on the new state, not lost.
func TestExecuteBatchAfterConcurrentAppend(t *testing.T) {
	ctx := context.Background()
	log := openLog(t)
	a := commands.NewHandler(log, commands.Config{})
	b := commands.NewHandler(log, commands.Config{})
	if _, err := a.Execute(ctx, commands.RegisterClient{ClientID: "c1"}); err != nil {
		t.Fatal(err)
	}
	run := func(kind string) commands.ReportClientTask {
		return commands.ReportClientTask{ClientID: "c1", Kind: kind, TaskID: "E", Run: "1"}
	}
	if _, err := b.Execute(ctx, run(commands.ClientTaskStarted)); err != nil {
		t.Fatal(err)
	}
	// a's cache does not know the run started: only the log does.
	res, errs, err := a.ExecuteBatch(ctx, []commands.Keyed{{Cmd: run(commands.ClientTaskStarted)}, {Cmd: run(commands.ClientTaskFinished)}})
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatal(err, errs)
	}
	if len(res[0].Events) != 0 || len(res[1].Events) != 1 {
		t.Fatalf("results %+v", res)
	}
}
