package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
)

// An agent started with --trust runs only tasks signed by a key it
// trusts: an unsigned task and one signed by another key are refused
// with the reason recorded and nothing spawned; the signed one runs.
// The signing key stays with the operator (flmngr signing-key create,
// flmngr task sign); the cloud only stores the signature.
func TestAgentRunsOnlySignedTasks(t *testing.T) {
	s := newSite(t)
	s.startUp()
	keyOut := s.cli("signing-key", "create", "--out", filepath.Join(s.dir, "op.nk"))
	lines := strings.Split(strings.TrimSpace(keyOut), "\n")
	pub := strings.TrimSpace(lines[1])
	s.cli("signing-key", "create", "--out", filepath.Join(s.dir, "other.nk"))
	s.agentArgs = []string{"--trust", pub}
	s.startAgent("c1", "")

	refused := func(task, says string) {
		t.Helper()
		c1 := projections.TimelineQuery{Client: "c1"}
		started, refusals := count(s.timeline(c1), events.ClientTaskStartedV1, task), count(s.timeline(c1), events.ClientTaskRefusedV1, task)
		s.cli("task", "start", task)
		s.waitFor(task+" refused", 30*time.Second, func() error {
			var last *projections.TimelineEntry
			n := 0
			for _, e := range s.timeline(c1) {
				if e.Type == events.ClientTaskRefusedV1 && e.Task == task {
					n, last = n+1, &e
				}
			}
			if n == refusals {
				return fmt.Errorf("not refused yet")
			}
			if !strings.Contains(last.Detail, says) {
				return fmt.Errorf("refused with %q, want %q", last.Detail, says)
			}
			return nil
		})
		if n := count(s.timeline(c1), events.ClientTaskStartedV1, task); n != started {
			t.Fatalf("task %s was started though refused", task)
		}
		s.cli("task", "stop", task)
		s.waitStatus(task, 30*time.Second, "stopped")
	}
	s.fedavgTask("unsigned", "--rounds 1", "")
	refused("unsigned", "is not signed")

	s.fedavgTask("foreign", "--rounds 1", "")
	s.cli("task", "sign", "foreign", "--key", filepath.Join(s.dir, "other.nk"))
	refused("foreign", "does not trust")

	s.fedavgTask("signed", "--rounds 1", "")
	if out := s.cli("task", "sign", "signed", "--key", filepath.Join(s.dir, "op.nk")); !strings.Contains(out, "signed by "+pub) {
		t.Fatalf("task sign: %s", out)
	}
	s.cli("task", "start", "signed")
	s.waitFor("the signed task running on c1", 30*time.Second, func() error {
		tl := s.timeline(projections.TimelineQuery{Client: "c1"})
		if count(tl, events.ClientTaskRefusedV1, "signed") != 0 {
			t.Fatalf("the signed task was refused: %v", tl)
		}
		if count(tl, events.ClientTaskRunningV1, "signed") != 1 {
			return fmt.Errorf("not running yet")
		}
		return nil
	})
	s.cli("task", "stop", "signed")
	s.waitStatus("signed", 30*time.Second, "stopped")
	// A new file voids the signature: the next run is refused until it
	// is signed again.
	s.cli("task", "upload", "signed", "client.py="+filepath.Join(s.dir, "fedavg.json"))
	refused("signed", "is not signed")
}
