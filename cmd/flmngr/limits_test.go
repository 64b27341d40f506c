package main

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/taskd"
)

// limitedTask registers, uploads and starts a shell task under limits.
func (s *site) limitedTask(id, limits, client string) {
	s.t.Helper()
	s.shellTask(id, client, "--limits", limits)
}

// quarantinedFor waits until client's timeline holds task errored and
// quarantined, both for reason, and returns the timeline.
func (s *site) quarantinedFor(client, task, reason string) []projections.TimelineEntry {
	s.t.Helper()
	var tl []projections.TimelineEntry
	s.waitFor(task+" quarantined on "+client, 60*time.Second, func() error {
		tl = s.timeline(projections.TimelineQuery{Client: client})
		for _, typ := range []string{events.ClientTaskErroredV1, events.ClientTaskQuarantinedV1} {
			i := len(tl) - 1
			for i >= 0 && (tl[i].Type != typ || tl[i].Task != task) {
				i--
			}
			switch {
			case i < 0:
				return fmt.Errorf("no %s yet", typ)
			case tl[i].Detail != reason:
				s.t.Fatalf("%s of %s: %q, want %q", typ, task, tl[i].Detail, reason)
			}
		}
		return nil
	})
	return tl
}

// memoryHog outgrows any small limit: tail keeps a line with no end.
const memoryHog = `head -c 2G /dev/zero | tail && echo '{"type":"info","info":"Finished"}'
`

// A task that allocates past its memory limit is killed with everything
// it started, recorded as errored with the limit as the reason, and
// quarantined; the reason is in the timeline, the task's logs and the
// client's view, and task get shows the limits.
func testMemoryLimit(t *testing.T, client, want string) {
	s := newSite(t)
	s.startUp()
	s.startAgent("c1", "")
	s.limitedTask("hog", "memory=64MiB,walltime=10m", client)
	s.quarantinedFor("c1", "hog", want)
	if n := count(s.timeline(projections.TimelineQuery{Client: "c1"}), events.ClientTaskFinishedV1, "hog"); n != 0 {
		t.Fatalf("the task finished under its limit")
	}
	if out := s.cli("task", "get", "hog"); !strings.Contains(out, "limits") || !strings.Contains(out, "memory=64MiB,walltime=10m") {
		t.Fatalf("task get does not show the limits:\n%s", out)
	}
	s.waitFor("the limit in the task's logs", 30*time.Second, func() error {
		if out := s.cli("logs", "hog", "--client", "c1"); !strings.Contains(out, "killed: "+want) {
			return fmt.Errorf("logs:\n%s", out)
		}
		return nil
	})
	if out := s.cli("user", "get", "c1"); !strings.Contains(out, want) {
		t.Fatalf("user get does not show why the task is quarantined:\n%s", out)
	}
}

func TestMemoryLimitKillsAndQuarantinesCgroup(t *testing.T) {
	if i := taskd.Isolation(); !i.Has("memory") {
		t.Skipf("no cgroup v2 memory controller can be delegated to task cgroups here (%s): the memory limit is enforced by RLIMIT_AS instead, see TestMemoryLimitKillsAndQuarantinesRlimit", i)
	}
	testMemoryLimit(t, memoryHog, "memory limit 64MiB exceeded")
}

func TestMemoryLimitKillsAndQuarantinesRlimit(t *testing.T) {
	if i := taskd.Isolation(); i.Has("memory") {
		t.Skip("the memory limit is enforced by the task's cgroup here, see TestMemoryLimitKillsAndQuarantinesCgroup")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the RLIMIT_AS fallback is Linux's")
	}
	// RLIMIT_AS is set just after the start: the script waits to see it.
	testMemoryLimit(t, `until grep -q '^Max address space  *67108864 ' /proc/$$/limits; do :; done
`+memoryHog, "memory limit 64MiB exceeded (address space)")
}

// A site's ceiling caps what a task asks: a task allowed an hour runs
// for the second the site allows, and is then stopped as errored.
func TestSiteCeilingCapsTaskLimits(t *testing.T) {
	s := newSite(t)
	s.startUp()
	s.agentArgs = []string{"--max-limits", "walltime=1s"}
	s.startAgent("c1", "")
	s.limitedTask("long", "walltime=1h", `echo '{"type":"info","info":"Started"}'; sleep 600`)
	tl := s.quarantinedFor("c1", "long", "walltime limit 1s exceeded")
	if count(tl, events.ClientTaskRunningV1, "long") != 1 {
		t.Fatalf("the task did not run before its limit: %v", tl)
	}
	if out := s.agentOut["c1"].String(); !strings.Contains(out, "limits ceiling: walltime=1s") || !strings.Contains(out, `limits=walltime=1s`) && !strings.Contains(out, `limits="walltime=1s"`) {
		t.Fatalf("the agent does not say its ceiling and the task's effective limits:\n%s", out)
	}
}

// Bad limits are refused with one line, before and after the CLI, and
// nothing is stored; an agent refuses a bad ceiling.
func TestBadLimitsAreRefused(t *testing.T) {
	s := newSite(t)
	s.startUp()
	for _, tc := range []struct{ limits, says string }{
		{"memory=2XB", `unknown unit "XB"`},
		{"cpu=0", "must be above zero"},
		{"gpu=1", `unknown limit "gpu"`},
		{"walltime=forever", "not a duration"},
	} {
		code, out, errOut := s.cliRun("", "task", "create", "bad", "--host", "h", "--port", "9", "--limits", tc.limits)
		if code != 2 || !strings.HasPrefix(errOut, "flmngr task create: --limits: ") || !strings.Contains(errOut, tc.says) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("--limits %s: exit %d, stdout %q, stderr %q; want one line saying %q", tc.limits, code, out, errOut, tc.says)
		}
	}
	// The cloud checks them too, whatever sends the command.
	if _, err := s.api.CreateTask(t.Context(), commands.CreateTask{TaskID: "bad", Host: "h", Port: 9, Limits: "memory=-1"}); err == nil || !strings.Contains(err.Error(), "limits") {
		t.Fatalf("the cloud took bad limits: %v", err)
	}
	if code, _, _ := s.cliRun("", "task", "get", "bad"); code == 0 {
		t.Fatal("a task with bad limits was stored")
	}
	s.cli("task", "create", "good", "--host", "h", "--port", "9", "--limits", "memory=2048MiB,cpu=2")
	if code, _, errOut := s.cliRun("", "task", "update", "good", "--limits", "pids=-3"); code == 0 || !strings.Contains(errOut, "--limits: ") {
		t.Fatalf("update took bad limits: %s", errOut)
	}
	if out := s.cli("task", "get", "good"); !strings.Contains(out, "cpu=2,memory=2GiB") {
		t.Fatalf("the limits are not kept in their canonical form, or the bad update changed them:\n%s", out)
	}
	code, _, errOut := s.cliRun("", "client", "--id", "c9", "--max-limits", "memory=lots")
	if code == 0 || !strings.Contains(errOut, "--max-limits: memory=lots") {
		t.Fatalf("client --max-limits memory=lots: exit %d, %s", code, errOut)
	}
}
