package commands_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	fjs "github.com/flmngr/flmngr/events/jetstream"
	"github.com/flmngr/flmngr/events/jetstream/jstest"
)

func openLog(t *testing.T) *fjs.Log { return jstest.Log(t) }

func fastHash(s string) (string, error) { return "hash-of-" + s, nil }

func TestHandlerAcrossReplicas(t *testing.T) {
	ctx := context.Background()
	log := openLog(t)
	a := commands.NewHandler(log, commands.Config{Source: "a", HashPassword: fastHash})
	b := commands.NewHandler(log, commands.Config{Source: "b", HashPassword: fastHash})

	create := &commands.CreateTask{TaskID: "4fe5", Host: "localhost", Port: 8080, Username: "user", Password: "123", FilesPaths: []string{"client.py"}, ServerCommand: []string{"sleep", "60"}}
	res, err := a.Execute(ctx, create)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 || res.Seq != 1 {
		t.Fatalf("create: %+v", res)
	}
	if hash := res.Events[0].Event.(*events.TaskCreated).PasswordHash; hash != "hash-of-123" {
		t.Fatalf("stored password hash %q", hash)
	}
	if _, err := b.Execute(ctx, create); commands.KindOf(err) != commands.KindConflict {
		t.Fatalf("duplicate create on another replica: %v", err)
	}
	// a caches the task as idle; b starts it; a's start must see that.
	if _, err := b.Execute(ctx, commands.StartTask{TaskID: "4fe5"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Execute(ctx, commands.StartTask{TaskID: "4fe5"}); commands.KindOf(err) != commands.KindConflict {
		t.Fatalf("start of a task started elsewhere: %v", err)
	}
	// Nothing changes: nothing appended.
	before, _ := log.LastSeq(ctx)
	res, err = a.Execute(ctx, commands.UpdateTask{TaskID: "4fe5", Port: new(8080)})
	if err != nil || len(res.Events) != 0 {
		t.Fatalf("no-op update: %+v %v", res, err)
	}
	if after, _ := log.LastSeq(ctx); after != before {
		t.Fatalf("no-op update appended: %d → %d", before, after)
	}
	if _, err := a.Execute(ctx, commands.StopTask{TaskID: "zzzz"}); commands.KindOf(err) != commands.KindNotFound {
		t.Fatalf("stop unknown: %v", err)
	}
}

func TestConcurrentCreatesOneWins(t *testing.T) {
	ctx := context.Background()
	log := openLog(t)
	handlers := []*commands.Handler{
		commands.NewHandler(log, commands.Config{HashPassword: fastHash}),
		commands.NewHandler(log, commands.Config{HashPassword: fastHash}),
	}
	var ok, conflicts atomic.Int32
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := handlers[i%2].Execute(ctx, &commands.CreateTask{TaskID: "same", Host: "h", Port: 1})
			switch commands.KindOf(err) {
			case commands.KindConflict:
				conflicts.Add(1)
			default:
				if err == nil {
					ok.Add(1)
				} else {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || conflicts.Load() != 39 {
		t.Fatalf("%d creates succeeded and %d conflicted, want 1 and 39", ok.Load(), conflicts.Load())
	}
	if last, _ := log.LastSeq(ctx); last != 1 {
		t.Fatalf("stream has %d events, want 1", last)
	}
}
