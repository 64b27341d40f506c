package taskd_test

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/taskd"
)

// offered lists the controllers this host gives for the skip messages.
func offered(i taskd.IsolationInfo) string {
	if !i.Cgroups {
		return "no per-task cgroups: " + i.Reason
	}
	if len(i.Offered) == 0 {
		return "controllers: none"
	}
	return "controllers: " + strings.Join(i.Offered, ", ")
}

// memoryHog outgrows any small limit: tail keeps a line with no end. The
// task reports Finished only if tail did not fail.
const memoryHog = `head -c 2G /dev/zero | tail && echo '{"type":"info","info":"Finished"}'`

func TestWallTimeLimitStopsAndReports(t *testing.T) {
	p, msgs := start(t, `echo '{"type":"info","info":"Started"}'; sleep 600`, func(c *taskd.Config) {
		c.Limits.WallTime = 200 * time.Millisecond
	})
	next(t, msgs, taskd.KindInfo)
	ex := waitExit(t, p)
	want := "walltime limit 200ms exceeded"
	if ex.Limit != want || ex.Outcome != taskd.OutcomeErrored || ex.Exception != want || ex.Signal != "terminated" {
		t.Fatalf("exit %+v, want errored with %q", ex, want)
	}
}

// A walltime limit that ignores SIGTERM is killed after the grace.
func TestWallTimeLimitKillsAfterGrace(t *testing.T) {
	p, msgs := start(t, `trap '' TERM; echo ready; while :; do sleep 1; done`, func(c *taskd.Config) {
		c.Limits.WallTime = 100 * time.Millisecond
		c.Grace = 100 * time.Millisecond
	})
	next(t, msgs, taskd.KindLog)
	if ex := waitExit(t, p); ex.Limit == "" || ex.Outcome != taskd.OutcomeErrored || ex.Signal != "killed" {
		t.Fatalf("exit %+v", ex)
	}
}

func TestWithinLimitsNothingIsReported(t *testing.T) {
	p, _ := start(t, `echo '{"type":"info","info":"Finished"}'`, func(c *taskd.Config) {
		c.Limits = taskd.Limits{CPU: 1, Memory: 1 << 30, PIDs: 100, WallTime: time.Hour}
	})
	if ex := waitExit(t, p); ex.Outcome != taskd.OutcomeFinished || ex.Limit != "" {
		t.Fatalf("exit %+v", ex)
	}
	// A Stop is a stop, even of a process with limits.
	p, msgs := start(t, `echo ready; sleep 600`, func(c *taskd.Config) { c.Limits.WallTime = time.Hour })
	next(t, msgs, taskd.KindLog)
	if ex, err := p.Stop(t.Context()); err != nil || ex.Outcome != taskd.OutcomeStopped || ex.Limit != "" {
		t.Fatalf("stop: %+v %v", ex, err)
	}
}

func TestEnforcementSaysHow(t *testing.T) {
	p, _ := start(t, `:`, func(c *taskd.Config) {
		c.Limits = taskd.Limits{CPU: 1.5, Memory: 64 << 20, PIDs: 50, WallTime: time.Hour}
	})
	got := p.Enforcement()
	for _, want := range []string{"cpu=1.5 ", "memory=64MiB by ", "pids=50 ", "walltime=1h by a timer"} {
		if !strings.Contains(got, want) {
			t.Errorf("enforcement %q does not say %q", got, want)
		}
	}
	waitExit(t, p)
	if p, _ := start(t, `:`); p.Enforcement() != "" {
		t.Errorf("enforcement without limits: %q", p.Enforcement())
	}
}

// The limits the cgroup controllers can enforce are in the task's cgroup
// files while it runs.
func TestLimitsWrittenToTheCgroup(t *testing.T) {
	i := taskd.Isolation()
	if len(i.Controllers) == 0 {
		t.Skipf("no cgroup v2 limit controller delegated here (%s)", offered(i))
	}
	p, msgs := start(t, `echo ready; sleep 600`, func(c *taskd.Config) {
		c.Limits = taskd.Limits{CPU: 0.5, Memory: 64 << 20, PIDs: 50}
	})
	next(t, msgs, taskd.KindLog)
	want := map[string]map[string]string{
		"cpu":    {"cpu.max": "50000 100000"},
		"memory": {"memory.max": "67108864"},
		"pids":   {"pids.max": "50"},
	}
	for _, c := range i.Controllers {
		for file, value := range want[c] {
			b, err := os.ReadFile(filepath.Join(p.Cgroup(), file))
			if err != nil || strings.TrimSpace(string(b)) != value {
				t.Errorf("%s: %q %v, want %q", file, b, err, value)
			}
		}
	}
}

func TestMemoryLimitCgroup(t *testing.T) {
	if i := taskd.Isolation(); !i.Has("memory") {
		t.Skipf("cgroup v2 memory controller not delegated here (%s): memory limit enforced by RLIMIT_AS instead, see TestMemoryLimitRlimitFallback", offered(i))
	}
	p, _ := start(t, memoryHog, func(c *taskd.Config) { c.Limits.Memory = 64 << 20 })
	ex := waitExit(t, p)
	want := "memory limit 64MiB exceeded"
	if ex.Limit != want || ex.Outcome != taskd.OutcomeErrored || ex.Exception != want {
		t.Fatalf("exit %+v, want errored with %q", ex, want)
	}
}

// Without a memory controller, RLIMIT_AS bounds the address space: an
// allocation past it fails, and the program's words for that tell the
// limit ended it.
func TestMemoryLimitRlimitFallback(t *testing.T) {
	if i := taskd.Isolation(); i.Has("memory") {
		t.Skip("memory limit enforced by the cgroup here, see TestMemoryLimitCgroup")
	}
	if runtime.GOOS != "linux" {
		t.Skip("RLIMIT_AS fallback: Linux only")
	}
	// RLIMIT_AS is set just after the start: the script waits to see it
	// (it could allocate before, in a real task).
	p, _ := start(t, `until grep -q '^Max address space  *67108864 ' /proc/$$/limits; do :; done
`+memoryHog, func(c *taskd.Config) { c.Limits.Memory = 64 << 20 })
	ex := waitExit(t, p)
	want := "memory limit 64MiB exceeded (address space)"
	if ex.Limit != want || ex.Outcome != taskd.OutcomeErrored || ex.Exception != want {
		t.Fatalf("exit %+v, want errored with %q", ex, want)
	}
	if !slices.ContainsFunc(ex.LastLogs, func(s string) bool { return strings.Contains(s, "memory exhausted") }) {
		t.Fatalf("last logs %q: tail did not fail to allocate", ex.LastLogs)
	}
}

func TestPIDsLimitMakesForkFail(t *testing.T) {
	if i := taskd.Isolation(); !i.Has("pids") {
		t.Skipf("cgroup v2 pids controller not delegated here (%s): the pids limit is not enforced", offered(i))
	}
	p, _ := start(t, `for i in 1 2 3 4 5 6 7 8 9 10; do sleep 600 & done; wait`, func(c *taskd.Config) { c.Limits.PIDs = 5 })
	ex := waitExit(t, p)
	want := "pids limit 5 reached"
	if ex.Limit != want || ex.Outcome != taskd.OutcomeErrored || ex.Exception != want {
		t.Fatalf("exit %+v, want errored with %q", ex, want)
	}
}
