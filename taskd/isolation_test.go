package taskd_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/testkit"
	"github.com/flmngr/flmngr/taskd"
)

// Isolation describes this host consistently, and says it in one line.
func TestIsolationDescribesThisHost(t *testing.T) {
	i := taskd.Isolation()
	t.Logf("isolation: %s", i)
	t.Logf("detail: %#v", i)
	if i.Cgroups == (i.Reason != "") {
		t.Fatalf("cgroups %v with reason %q", i.Cgroups, i.Reason)
	}
	if !i.Cgroups {
		return
	}
	if st, err := os.Stat(i.Base); err != nil || !st.IsDir() {
		t.Fatalf("base %s: %v", i.Base, err)
	}
	for _, c := range i.Controllers {
		if c != "cpu" && c != "memory" && c != "pids" {
			t.Errorf("controller %q is no limit controller", c)
		}
	}
}

// skipWithoutCgroups skips a test of what only a cgroup per task does.
func skipWithoutCgroups(t *testing.T) taskd.IsolationInfo {
	t.Helper()
	i := taskd.Isolation()
	if !i.Cgroups {
		t.Skipf("per-task cgroups unavailable here (%s): a setsid'd grandchild leaves the process group and outlives its task", i.Reason)
	}
	return i
}

// pgrp is the process group of pid, 0 if it is gone.
func pgrp(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, _ := strconv.Atoi(f[2])
	return n
}

func TestProcessRunsInItsCgroup(t *testing.T) {
	i := taskd.Isolation()
	p, msgs := start(t, `echo ready; sleep 600`, func(c *taskd.Config) { c.Name = "my task/1" })
	if !i.Cgroups {
		if p.Cgroup() != "" {
			t.Fatalf("cgroup %s without cgroups", p.Cgroup())
		}
		t.Skipf("per-task cgroups unavailable here (%s)", i.Reason)
	}
	next(t, msgs, taskd.KindLog)
	cg := p.Cgroup()
	if filepath.Dir(cg) != i.Base || !strings.HasPrefix(filepath.Base(cg), "my_task_1-") {
		t.Fatalf("cgroup %s: want my_task_1-... in %s", cg, i.Base)
	}
	procs, err := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
	if err != nil || !slices.Contains(strings.Fields(string(procs)), strconv.Itoa(p.PID())) {
		t.Fatalf("cgroup.procs of %s: %q %v; want pid %d", cg, procs, err, p.PID())
	}
	if _, err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cg); !os.IsNotExist(err) {
		t.Fatalf("cgroup %s left after the exit: %v", cg, err)
	}
}

// setsidScript starts a grandchild in a session of its own, records its
// pid in pidfile and waits until it left the task's process group.
func setsidScript(pidfile string) string {
	return `setsid sleep 1000 & echo $! > ` + pidfile + `
while [ "$(cut -d' ' -f5 /proc/$!/stat)" = "$$" ]; do :; done
echo '{"type":"info","info":"Started"}'
`
}

// grandchild reads the pid of the setsid'd grandchild and checks it left
// the task's group: the group kill cannot reach it.
func grandchild(t *testing.T, pidfile string, task int) int {
	t.Helper()
	gc := readPID(t, pidfile)
	if !alive(gc) {
		t.Fatalf("grandchild %d not running", gc)
	}
	if g := pgrp(gc); g == task || g == 0 {
		t.Fatalf("grandchild %d in group %d: it did not leave the task's group %d", gc, g, task)
	}
	return gc
}

func TestSetsidGrandchildDiesOnStop(t *testing.T) {
	skipWithoutCgroups(t)
	pidfile := filepath.Join(t.TempDir(), "grandchild")
	p, msgs := start(t, setsidScript(pidfile)+`sleep 100`)
	next(t, msgs, taskd.KindInfo)
	gc := grandchild(t, pidfile, p.PID())
	ex, err := p.Stop(context.Background())
	if err != nil || ex.Outcome != taskd.OutcomeStopped {
		t.Fatalf("stop: %+v %v", ex, err)
	}
	if !testkit.Until(5*time.Second, func() bool { return !alive(gc) }) {
		t.Fatalf("setsid'd grandchild %d outlived the stop", gc)
	}
}

func TestSetsidGrandchildDiesWithItsTask(t *testing.T) {
	skipWithoutCgroups(t)
	pidfile := filepath.Join(t.TempDir(), "grandchild")
	// The task waits for the file pidfile.go before it finishes: until the
	// test wrote it, the task and its grandchild are both running.
	p, msgs := start(t, setsidScript(pidfile)+`while [ ! -e `+pidfile+`.go ]; do sleep 0.01; done
echo '{"type":"info","info":"Finished"}'`)
	next(t, msgs, taskd.KindInfo)
	gc := grandchild(t, pidfile, p.PID())
	// Now the task may end, by itself.
	if err := os.WriteFile(pidfile+".go", []byte("go\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ex := waitExit(t, p)
	if ex.Outcome != taskd.OutcomeFinished {
		t.Fatalf("exit %+v", ex)
	}
	if !testkit.Until(5*time.Second, func() bool { return !alive(gc) }) {
		t.Fatalf("setsid'd grandchild %d outlived its task", gc)
	}
}
