package viewstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/projections/viewstore"
)

func fastHash(s string) (string, error) { return "hash-of-" + s, nil }

// newLog is an event log on an embedded server, with a command handler
// appending to it.
func newLog(t *testing.T) (*eventlog.Log, *commands.Handler) {
	t.Helper()
	log := jstest.Log(t)
	return log, commands.NewHandler(log, commands.Config{HashPassword: fastHash})
}

// openStore opens views in dir, closed when the test ends.
func openStore(t *testing.T, dir string) *viewstore.Store {
	t.Helper()
	s, err := viewstore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// workload drives a varied history through the real command handler.
func workload(t *testing.T, h *commands.Handler, from, to int) {
	t.Helper()
	ctx := context.Background()
	must := func(_ commands.Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sensors := []string{"camera", "ecu"}
	for i := from; i < to; i++ {
		id := fmt.Sprintf("t%03d", i)
		must(h.Execute(ctx, &commands.CreateTask{TaskID: id, Host: "localhost", Port: 8000 + i, Username: "u", Password: "p",
			FilesPaths: []string{"client.py"}, SelectionCriteria: `"camera" in sensors`, Tags: []string{"mnist", fmt.Sprint(i % 3)}, ServerCommand: []string{"sleep", "600"}}))
		if i%4 == 3 {
			// Never started: deleted again, and the id reused once.
			must(h.Execute(ctx, commands.DeleteTask{TaskID: id}))
			if i%8 == 3 {
				must(h.Execute(ctx, &commands.CreateTask{TaskID: id, Host: "again", Port: 1}))
				must(h.Execute(ctx, commands.DeleteTask{TaskID: id}))
			}
			continue
		}
		must(h.Execute(ctx, commands.StartTask{TaskID: id}))
		if i%2 == 0 {
			must(h.Execute(ctx, commands.StopTask{TaskID: id}))
		}
		if i%3 == 0 {
			must(h.Execute(ctx, commands.UpdateTask{TaskID: id, Port: new(9000 + i)}))
		}
		cid := fmt.Sprintf("c%03d", i)
		must(h.Execute(ctx, commands.ReportClientInfo{ClientID: cid, Register: true, ClientInfo: commands.ClientInfo{Sensors: &sensors}}))
		must(h.Execute(ctx, commands.ReportClientInfo{ClientID: cid, ClientInfo: commands.ClientInfo{DataQnt: new(int64(i)), Extra: map[string]any{"gpu": i%2 == 0}}}))
	}
}

func dump(t *testing.T, s *viewstore.Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if err := s.Dump(func(k, v []byte) error { out[string(k)] = v; return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func run(t *testing.T, s *viewstore.Store, src viewstore.Source) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, src) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

func waitCaughtUp(t *testing.T, s *viewstore.Store, src viewstore.Source) {
	t.Helper()
	last, err := src.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitFor(ctx, last); err != nil {
		t.Fatal(err)
	}
}

// TestRebuildEqualsIncremental builds views incrementally across restarts,
// then rebuilds them in another store and in place, and compares every
// key and value.
func TestRebuildEqualsIncremental(t *testing.T) {
	log, h := newLog(t)
	dir := t.TempDir()

	inc, err := viewstore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, inc, log)
	workload(t, h, 0, 20)
	waitCaughtUp(t, inc, log)
	stop()
	cp := inc.Applied()
	if err := inc.Close(); err != nil {
		t.Fatal(err)
	}

	// Events appended while the projection is down are applied after a
	// restart, which resumes from the checkpoint.
	workload(t, h, 20, 40)
	inc, err = viewstore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer inc.Close()
	if inc.Applied() != cp {
		t.Fatalf("checkpoint after reopen = %d, want %d", inc.Applied(), cp)
	}
	stop = run(t, inc, log)
	waitCaughtUp(t, inc, log)
	stop()
	incremental := dump(t, inc)

	last, _ := log.LastSeq(context.Background())
	entries, _, err := inc.Timeline(projections.TimelineQuery{Limit: 10_000})
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(entries)) != last {
		t.Fatalf("timeline has %d entries, stream %d events", len(entries), last)
	}
	for i, e := range entries {
		if e.Seq != uint64(i+1) {
			t.Fatalf("timeline entry %d has seq %d", i, e.Seq)
		}
	}

	fresh := openStore(t, t.TempDir())
	if _, err := fresh.RebuildOffline(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	compare(t, "rebuilt elsewhere", incremental, dump(t, fresh))

	stop = run(t, inc, log)
	if _, err := inc.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop()
	compare(t, "rebuilt in place", incremental, dump(t, inc))
}

func compare(t *testing.T, what string, want, got map[string][]byte) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: %d keys, incremental has %d", what, len(got), len(want))
	}
	for k, v := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: key %q missing", what, k)
		} else if !bytes.Equal(g, v) {
			t.Errorf("%s: key %q differs:\n got %s\nwant %s", what, k, g, v)
		}
	}
}

func TestQueries(t *testing.T) {
	log, h := newLog(t)
	s := openStore(t, t.TempDir())
	stop := run(t, s, log)
	defer stop()
	workload(t, h, 0, 10)
	waitCaughtUp(t, s, log)

	v, err := s.Task("t001")
	if err != nil || v == nil {
		t.Fatalf("Task(t001) = %v, %v", v, err)
	}
	if v.Status != commands.StatusStartRequested || !v.Running || v.Spec.Port != 8001 {
		t.Fatalf("t001 view: %+v", v)
	}
	if v, _ := s.Task("t003"); v != nil {
		t.Fatalf("deleted task t003 still has a view: %+v", v)
	}
	running, err := s.Tasks(projections.TaskFilter{Status: "running"})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range running {
		if !v.Running {
			t.Fatalf("filter running returned %s in %s", v.ID, v.Status)
		}
	}
	if len(running) != 3 {
		t.Fatalf("%d running tasks, want 3 (t001, t005, t009)", len(running))
	}
	tagged, _ := s.Tasks(projections.TaskFilter{Tag: "1"})
	for _, v := range tagged {
		if v.ID != "t001" && v.ID != "t004" {
			t.Fatalf("tag filter returned %s", v.ID)
		}
	}
	c, err := s.Client("c004")
	if err != nil || c == nil || c.Attributes.DataQnt != 4 || c.Attributes.Extra["gpu"] != true {
		t.Fatalf("Client(c004) = %+v, %v", c, err)
	}
	// Paging the timeline of one task.
	page, next, err := s.Timeline(projections.TimelineQuery{Task: "t000", Limit: 2})
	if err != nil || len(page) != 2 || next == 0 || page[0].Type != "task.created.v1" {
		t.Fatalf("timeline page 1: %+v next=%d err=%v", page, next, err)
	}
	rest, next2, err := s.Timeline(projections.TimelineQuery{Task: "t000", After: next})
	if err != nil || next2 != 0 || len(rest) != 2 || rest[0].Seq <= page[1].Seq {
		t.Fatalf("timeline page 2: %+v next=%d err=%v", rest, next2, err)
	}
}

// TestInterruptedRebuildLeavesViewsIntact simulates a crash in the middle
// of a rebuild: a half-written generation next to the current one. The
// next Open serves the current views and removes the leftover.
func TestInterruptedRebuildLeavesViewsIntact(t *testing.T) {
	log, h := newLog(t)
	dir := t.TempDir()
	s, err := viewstore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s, log)
	workload(t, h, 0, 5)
	waitCaughtUp(t, s, log)
	if _, err := s.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	stop()
	before := dump(t, s)
	s.Close()

	leftover := filepath.Join(dir, "gen-000003")
	if err := os.MkdirAll(leftover, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(leftover, "000001.sst"), []byte("half written"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = viewstore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	compare(t, "after an interrupted rebuild", before, dump(t, s))
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover generation not removed: %v", err)
	}
	cur, err := os.ReadFile(filepath.Join(dir, "CURRENT"))
	if err != nil || strings.TrimSpace(string(cur)) != "2" {
		t.Fatalf("CURRENT = %q, %v; want 2", cur, err)
	}
}

// Pages of tasks (in creation order, filtered) and of clients (by id) add
// up to the whole lists, without gaps or repeats.
func TestPages(t *testing.T) {
	log, h := newLog(t)
	s := openStore(t, t.TempDir())
	stop := run(t, s, log)
	workload(t, h, 0, 40)
	waitCaughtUp(t, s, log)
	stop()
	for _, f := range []projections.TaskFilter{{}, {Tag: "1"}, {Status: "stopped"}} {
		all, err := s.Tasks(f)
		if err != nil {
			t.Fatal(err)
		}
		var paged []string
		after := ""
		for pages := 0; ; pages++ {
			page, next, err := s.TasksPage(f, after, 7)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 7 || pages > 100 {
				t.Fatalf("page of %d", len(page))
			}
			for _, v := range page {
				paged = append(paged, v.ID)
			}
			if next == "" {
				break
			}
			after = next
		}
		if len(paged) != len(all) {
			t.Fatalf("%+v: %d paged, %d in all", f, len(paged), len(all))
		}
		for i := range all {
			if all[i].ID != paged[i] {
				t.Fatalf("%+v: page order %v differs from %v at %d", f, paged, all[i].ID, i)
			}
			if i > 0 && all[i].CreatedSeq <= all[i-1].CreatedSeq {
				t.Fatalf("not in creation order at %d", i)
			}
		}
	}
	clients, _ := s.Clients()
	var ids []string
	for after := ""; ; {
		page, next, err := s.ClientsPage(after, 6)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			ids = append(ids, c.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if len(ids) != len(clients) {
		t.Fatalf("%d clients paged, %d in all", len(ids), len(clients))
	}
	if _, _, err := s.TasksPage(projections.TaskFilter{}, "zz", 5); err == nil {
		t.Fatal("a bad cursor was taken")
	}
}
