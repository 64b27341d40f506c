package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
)

// A site started with --approval manual holds an offered task until it
// approves it on the device: `user get` and `task get` say so, `client
// approvals` lists it, `client approve` shows what it approves and the
// task then runs. A task id with path characters is refused with a clear
// error and approves nothing.
func TestClientApproveOnTheDevice(t *testing.T) {
	s := newSite(t)
	s.startUp()
	s.agentArgs = []string{"--approval", "manual"}
	s.startAgent("c1", "")
	work := filepath.Join(s.dir, "agents", "c1")
	s.fedavgTask("T", "--rounds 1", "")
	s.cli("task", "start", "T")
	c1 := projections.TimelineQuery{Client: "c1"}
	s.waitFor("T awaiting approval at c1", 30*time.Second, func() error {
		if count(s.timeline(c1), events.ClientTaskAwaitingApprovalV1, "T") == 0 {
			return errors.New("not yet")
		}
		return nil
	})
	if out := s.cli("user", "get", "c1"); !strings.Contains(out, "awaiting_approval") || !strings.Contains(out, "T/1 at site c1") {
		t.Fatalf("user get does not show T awaiting approval:\n%s", out)
	}
	if out := s.cli("task", "get", "T"); !regexp.MustCompile(`(?m)^awaiting_approval +at site c1$`).MatchString(out) {
		t.Fatalf("task get does not show the site awaiting approval:\n%s", out)
	}
	if out := s.cli("client", "approvals", "--workdir", work); !strings.Contains(out, "pending") || !strings.Contains(out, "T ") {
		t.Fatalf("client approvals does not list T:\n%s", out)
	}
	if n := count(s.timeline(c1), events.ClientTaskStartedV1, "T"); n != 0 {
		t.Fatal("T started before it was approved")
	}

	for _, hostile := range []string{"../T", "T/../../x", "/etc/passwd"} {
		cmd := exec.Command(s.bin, "client", "approve", hostile, "--workdir", work, "--yes")
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "must be 1-64 letters") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
			t.Fatalf("client approve %q: %v\n%s", hostile, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(work, "approvals.json")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused approval wrote the approvals file: %v", err)
	}

	out := s.cli("client", "approve", "T", "--workdir", work, "--yes")
	for _, want := range []string{"statement", "fedavg.json", "signed_by", "approved task T"} {
		if !strings.Contains(out, want) {
			t.Fatalf("client approve does not show %q:\n%s", want, out)
		}
	}
	s.waitFor("T running on c1", 30*time.Second, func() error {
		tl := s.timeline(c1)
		if count(tl, events.ClientTaskRunningV1, "T") == 0 {
			return fmt.Errorf("not running yet")
		}
		if count(tl, events.ClientTaskApprovedV1, "T") != 1 {
			t.Fatalf("no approved event: %v", tl)
		}
		return nil
	})
	if out := s.cli("client", "approvals", "--workdir", work); !strings.Contains(out, "approved") {
		t.Fatalf("client approvals does not list the approval:\n%s", out)
	}
}
