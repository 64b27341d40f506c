package commands_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
)

func openLog(t *testing.T) *eventlog.Log { return jstest.Log(t) }

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
	if _, err := b.Execute(ctx, create); fault.KindOf(err) != fault.KindConflict {
		t.Fatalf("duplicate create on another replica: %v", err)
	}
	// a caches the task as idle; b starts it; a's start must see that.
	if _, err := b.Execute(ctx, commands.StartTask{TaskID: "4fe5"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Execute(ctx, commands.StartTask{TaskID: "4fe5"}); fault.KindOf(err) != fault.KindConflict {
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
	if _, err := a.Execute(ctx, commands.StopTask{TaskID: "zzzz"}); fault.KindOf(err) != fault.KindNotFound {
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
			switch fault.KindOf(err) {
			case fault.KindConflict:
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

// A storm of duplicate commands under one idempotency key, sent at once
// through several handlers (as by several cloud replicas), appends each
// command's events once, and every duplicate is answered with the first
// one's result — also by a handler started afterwards.
func TestIdempotencyKeyStorm(t *testing.T) {
	ctx := context.Background()
	log := openLog(t)
	handlers := make([]*commands.Handler, 4)
	for i := range handlers {
		handlers[i] = commands.NewHandler(log, commands.Config{HashPassword: fastHash})
	}
	storm := func(key string, cmd func() commands.Command) (seq uint64) {
		t.Helper()
		kctx := commands.WithIdempotencyKey(ctx, key)
		var (
			wg       sync.WaitGroup
			appended atomic.Int32
			mu       sync.Mutex
			seqs     = map[uint64]int{}
		)
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := handlers[i%len(handlers)].Execute(kctx, cmd())
				if err != nil {
					t.Errorf("%s: duplicate %d: %v", key, i, err)
					return
				}
				if len(res.Events) > 0 {
					appended.Add(1)
				} else if !res.Replayed {
					t.Errorf("%s: duplicate %d neither appended nor replayed: %+v", key, i, res)
				}
				mu.Lock()
				seqs[res.Seq]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if appended.Load() != 1 || len(seqs) != 1 {
			t.Fatalf("%s: %d of 200 duplicates appended, answers %v; want 1 and one sequence", key, appended.Load(), seqs)
		}
		for s := range seqs {
			seq = s
		}
		return seq
	}
	created := storm("create-1", func() commands.Command {
		return &commands.CreateTask{TaskID: "t", Host: "h", Port: 1, Username: "u", Password: "pw", ServerCommand: []string{"sleep", "60"}}
	})
	started := storm("start-1", func() commands.Command { return commands.StartTask{TaskID: "t"} })
	reported := storm("report-1", func() commands.Command {
		return commands.ReportClientInfo{ClientID: "c", Register: true, ClientInfo: commands.ClientInfo{Sensors: &[]string{"camera"}}}
	})
	if created != 1 || started != 2 || reported != 3 {
		t.Fatalf("sequences create %d start %d report %d, want 1 2 3", created, started, reported)
	}
	if last, _ := log.LastSeq(ctx); last != 3 {
		t.Fatalf("stream has %d events, want 3", last)
	}

	// The key, not the command, makes a repeat: a start under a new key
	// is decided and refused, since the task is already started.
	if _, err := handlers[0].Execute(commands.WithIdempotencyKey(ctx, "start-2"), commands.StartTask{TaskID: "t"}); fault.KindOf(err) != fault.KindConflict {
		t.Fatalf("start under a new key: %v, want conflict", err)
	}
	// A handler that starts later learns the keys from the log.
	fresh := commands.NewHandler(log, commands.Config{HashPassword: fastHash})
	res, err := fresh.Execute(commands.WithIdempotencyKey(ctx, "start-1"), commands.StartTask{TaskID: "t"})
	if err != nil || !res.Replayed || res.Seq != started {
		t.Fatalf("replay on a fresh handler: %+v %v, want replayed at %d", res, err, started)
	}
	// Keys are bounded: each is printable ASCII.
	if _, err := fresh.Execute(commands.WithIdempotencyKey(ctx, "bad key"), commands.StopTask{TaskID: "t"}); fault.KindOf(err) != fault.KindInvalid {
		t.Fatalf("key with a space: %v, want invalid", err)
	}
}

// An aggregate remembers its last MaxRemembered keyed commands.
func TestIdempotencyKeysAreRememberedBoundedly(t *testing.T) {
	ctx := context.Background()
	log := openLog(t)
	h := commands.NewHandler(log, commands.Config{HashPassword: fastHash})
	key := func(i int) context.Context { return commands.WithIdempotencyKey(ctx, "r-"+strconv.Itoa(i)) }
	report := func(i int) commands.Command {
		return commands.ReportClientInfo{ClientID: "c", Register: true, ClientInfo: commands.ClientInfo{DataQnt: new(int64(i))}}
	}
	for i := range commands.MaxRemembered + 1 {
		if res, err := h.Execute(key(i), report(i)); err != nil || res.Replayed {
			t.Fatalf("report %d: %+v %v", i, res, err)
		}
	}
	// The newest MaxRemembered are replayed; the oldest is forgotten and
	// decided again (reporting an older value appends an event).
	if res, err := h.Execute(key(1), report(1)); err != nil || !res.Replayed {
		t.Fatalf("report 1 again: %+v %v, want replayed", res, err)
	}
	if res, err := h.Execute(key(0), report(0)); err != nil || res.Replayed || len(res.Events) == 0 {
		t.Fatalf("report 0 again: %+v %v, want decided again", res, err)
	}
}

// A password bcrypt cannot hash is the caller's mistake, named as such,
// not an internal error.
func TestPasswordTooLongForBcrypt(t *testing.T) {
	h := commands.NewHandler(openLog(t), commands.Config{})
	long := strings.Repeat("p", 73)
	_, err := h.Execute(context.Background(), &commands.CreateTask{TaskID: "4fe5", Host: "localhost", Port: 8080, Username: "user", Password: long})
	var e *fault.Error
	if !errors.As(err, &e) || e.Kind != fault.KindInvalid || e.Field != "password" || !strings.Contains(e.Message, "72 bytes") {
		t.Fatalf("a 73-byte password: %v, want invalid password naming 72 bytes", err)
	}
	if _, err := h.Execute(context.Background(), &commands.CreateTask{TaskID: "4fe5", Host: "localhost", Port: 8080, Username: "user", Password: long[:72]}); err != nil {
		t.Fatalf("a 72-byte password: %v", err)
	}
}
