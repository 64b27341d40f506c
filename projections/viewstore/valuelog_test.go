package viewstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
)

// TestValueLogReclaimsOverwrittenViews writes views that are overwritten
// again and again (clients reporting large attributes), and checks that
// the value log, where the views are kept, gives back the space of the
// overwritten ones, and that the views still read right after.
func TestValueLogReclaimsOverwrittenViews(t *testing.T) {
	memTable, valueLog, every := memTableSize, valueLogFileSize, valueLogGCEvery
	memTableSize, valueLogFileSize = 1<<20, 1<<20 // the smallest Badger takes
	valueLogGCEvery = 100 * time.Millisecond
	t.Cleanup(func() { memTableSize, valueLogFileSize, valueLogGCEvery = memTable, valueLog, every })

	log := jstest.Log(t)
	h := commands.NewHandler(log, commands.Config{})
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, log) }()
	t.Cleanup(func() { cancel(); <-done })

	// 500 clients × 120 reports of 1 KB: 60 MB of views written, 500 KB
	// of them current, and enough keys for Badger to compact its tree.
	const clients, reports = 500, 120
	notes := strings.Repeat("n", 1000)
	for r := range reports {
		cmds := make([]commands.Command, clients)
		for c := range cmds {
			q := int64(r)
			cmds[c] = commands.ReportClientInfo{ClientID: fmt.Sprintf("c%03d", c), Register: true,
				ClientInfo: commands.ClientInfo{DataQnt: &q, Extra: map[string]any{"notes": notes}}}
		}
		_, errs := h.ExecuteEach(ctx, cmds)
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	last, err := log.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return s.Applied() >= last })

	// Badger learns which files are mostly overwritten as it compacts its
	// tree, in the background; Run collects every valueLogGCEvery. Without
	// the collection the value log keeps about 97 MB here.
	waitFor(t, func() bool { return valueLogBytes(t, s) < 45e6 })
	t.Logf("value log %d bytes, after 60 MB of views written", valueLogBytes(t, s))

	v, err := s.Client("c042")
	if err != nil {
		t.Fatal(err)
	}
	if v == nil || v.Attributes.DataQnt != reports-1 || v.Attributes.Extra["notes"] != notes {
		t.Fatalf("client c042 after the collection: %+v", v)
	}
}

// valueLogBytes is the size of the current generation's value log files.
func valueLogBytes(t *testing.T, s *Store) int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(generationDir(s.dir, s.gen), "*.vlog"))
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			n += fi.Size()
		}
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
