package viewstore_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/projections/viewstore"
)

// A store that stops writes a snapshot; a rebuild then reads only the
// events after it, and so does a store whose views were lost; the views
// equal those of a rebuild from the first event.
func TestSnapshotThenTail(t *testing.T) {
	ctx := context.Background()
	log, h := newLog(t)
	dir := t.TempDir()
	s, err := viewstore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, s, log)
	workload(t, h, 0, 30)
	waitCaughtUp(t, s, log)
	stop() // writes the snapshot
	snap, ok, err := s.SnapshotInfo()
	if err != nil || !ok || snap.Seq != s.Applied() || snap.Bytes == 0 {
		t.Fatalf("snapshot after Run stopped: %+v %v %v (views at %d)", snap, ok, err, s.Applied())
	}
	workload(t, h, 30, 34) // the tail
	last, _ := log.LastSeq(ctx)
	if last <= snap.Seq {
		t.Fatal("no tail")
	}

	if _, err := s.RebuildOffline(ctx, log); err != nil {
		t.Fatal(err)
	}
	if got, want := s.TailRead.Load(), int64(last-snap.Seq); got != want {
		t.Fatalf("rebuild read %d events, want the %d after the snapshot", got, want)
	}
	fromSnap := dump(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	full := rebuiltFromScratch(t, log)
	if got := full.TailRead.Load(); got != int64(last) {
		t.Fatalf("a rebuild without a snapshot read %d events, want %d", got, last)
	}
	same(t, "snapshot + tail", fromSnap, "full rebuild", dump(t, full))

	// The views are lost (their generation removed); the snapshot stays.
	gens, _ := filepath.Glob(filepath.Join(dir, "gen-*"))
	for _, g := range gens {
		if err := os.RemoveAll(g); err != nil {
			t.Fatal(err)
		}
	}
	os.Remove(filepath.Join(dir, "CURRENT"))
	again, err := viewstore.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop = run(t, again, log)
	waitCaughtUp(t, again, log)
	stop()
	if got, want := again.TailRead.Load(), int64(last-snap.Seq); got != want {
		t.Fatalf("a restart without views read %d events, want the %d after the snapshot", got, want)
	}
	same(t, "restart from snapshot", dump(t, again), "full rebuild", dump(t, full))
	again.Close()
}

// rebuiltFromScratch is a store of its own whose views were rebuilt from
// the log's first event; it is closed when the test ends.
func rebuiltFromScratch(t *testing.T, log *eventlog.Log) *viewstore.Store {
	t.Helper()
	full := openStore(t, t.TempDir())
	if _, err := full.RebuildOffline(context.Background(), log); err != nil {
		t.Fatal(err)
	}
	return full
}

func same(t *testing.T, an string, a map[string][]byte, bn string, b map[string][]byte) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%s has %d keys, %s %d", an, len(a), bn, len(b))
	}
	for k, v := range b {
		if !bytes.Equal(a[k], v) {
			t.Fatalf("key %q: %s has %q, %s %q", k, an, a[k], bn, v)
		}
	}
}

// A snapshot written while the views run (from one read transaction) is
// one a rebuild starts from: it reads only the events after it, and the
// views equal those of a rebuild from the first event.
func TestSnapshotWhileRunning(t *testing.T) {
	ctx := context.Background()
	log, h := newLog(t)
	s := openStore(t, t.TempDir())
	stop := run(t, s, log)
	workload(t, h, 0, 30)
	waitCaughtUp(t, s, log)
	snap, err := s.Snapshot()
	if err != nil || snap.Seq != s.Applied() || snap.Bytes == 0 {
		t.Fatalf("snapshot while running: %+v %v (views at %d)", snap, err, s.Applied())
	}
	workload(t, h, 30, 31) // a tail too short for a snapshot when Run stops
	waitCaughtUp(t, s, log)
	stop()
	if again, _, _ := s.SnapshotInfo(); again.Seq != snap.Seq {
		t.Fatalf("Run stopping replaced the snapshot at %d with one at %d", snap.Seq, again.Seq)
	}
	last, _ := log.LastSeq(ctx)
	if _, err := s.RebuildOffline(ctx, log); err != nil {
		t.Fatal(err)
	}
	if got, want := s.TailRead.Load(), int64(last-snap.Seq); got != want || want == 0 {
		t.Fatalf("rebuild read %d events, want the %d after the snapshot", got, want)
	}
	full := rebuiltFromScratch(t, log)
	same(t, "running snapshot + tail", dump(t, s), "full rebuild", dump(t, full))
}
