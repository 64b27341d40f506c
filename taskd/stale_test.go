package taskd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/testkit"
)

// A group recorded by a pid file, child and grandchildren, is killed by
// KillStale as a supervisor coming back would; a pid file whose process
// started at another time (the number was reused) kills nothing.
func TestKillStaleEndsWhatADeadSupervisorLeft(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sh", "-c", "sleep 600 & sleep 600 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	pid := cmd.Process.Pid
	if err := writePIDFile(filepath.Join(dir, "task_a.pid"), pid, ""); err != nil {
		t.Fatal(err)
	}
	// The grandchildren take a moment to exist.
	start, _ := startTime(pid)
	testkit.Until(5*time.Second, func() bool { return len(groupMembers(pid, start)) >= 3 })
	if n := len(groupMembers(pid, start)); n != 3 {
		t.Fatalf("group has %d processes, want 3", n)
	}

	// Another live process, recorded with a start time that is not its own.
	other := exec.Command("sleep", "600")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()
	otherStart, _ := startTime(other.Process.Pid)
	os.WriteFile(filepath.Join(dir, "task_b.pid"), fmt.Appendf(nil, "%d %d\n", other.Process.Pid, otherStart+1000000), 0o644)

	stale, err := KillStale(dir, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	killed := map[string]int{}
	for _, s := range stale {
		killed[filepath.Base(s.File)] = s.Killed
	}
	if killed["task_a.pid"] != 3 || killed["task_b.pid"] != 0 {
		t.Fatalf("killed %v, want 3 of task_a and none of task_b", killed)
	}
	select {
	case <-reaped:
	case <-time.After(5 * time.Second):
		t.Fatal("the recorded child is still alive")
	}
	if len(groupMembers(pid, start)) != 0 {
		t.Fatal("grandchildren survived")
	}
	if err := syscall.Kill(other.Process.Pid, 0); err != nil {
		t.Fatalf("a process with a reused number was killed: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.pid")); len(left) != 0 {
		t.Fatalf("pid files left: %v", left)
	}
}

// A process started with a pid file has it while it runs, not after.
func TestPIDFileLivesWithTheProcess(t *testing.T) {
	f := filepath.Join(t.TempDir(), "run", "x.pid")
	p, err := Start(Config{Argv: []string{"sh", "-c", "sleep 0.2"}, PIDFile: f})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatalf("pid file while running: %v", err)
	}
	if cg := p.Cgroup(); cg != "" && !strings.HasSuffix(string(b), " "+cg+"\n") {
		t.Fatalf("pid file %q does not name cgroup %s", b, cg)
	}
	<-p.Done()
	if _, err := os.Stat(f); !os.IsNotExist(err) {
		t.Fatalf("pid file after exit: %v", err)
	}
}

// A pid file also names the process's cgroup: KillStale kills what left
// the group (setsid) too, and removes the cgroup.
func TestKillStaleEndsTheRecordedCgroup(t *testing.T) {
	iso := Isolation()
	if !iso.Cgroups {
		t.Skipf("per-task cgroups unavailable here (%s)", iso.Reason)
	}
	dir := t.TempDir()
	c, err := newCgroup(iso, "stale", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "setsid sleep 600 & sleep 600 & wait")
	cmd.SysProcAttr = procAttr(c)
	err = cmd.Start()
	c.started()
	if err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	pid := cmd.Process.Pid
	if err := writePIDFile(filepath.Join(dir, "task_c.pid"), pid, c.path()); err != nil {
		t.Fatal(err)
	}
	// The old reading of a pid file still reads the new one.
	b, _ := os.ReadFile(filepath.Join(dir, "task_c.pid"))
	var gotPID, gotStart int
	if _, err := fmt.Sscanf(string(b), "%d %d", &gotPID, &gotStart); err != nil || gotPID != pid {
		t.Fatalf("pid file %q: %v", b, err)
	}
	start, _ := startTime(pid)
	testkit.Until(5*time.Second, func() bool { return len(c.procs()) >= 3 && len(groupMembers(pid, start)) <= 2 })
	if n, g := len(c.procs()), len(groupMembers(pid, start)); n != 3 || g != 2 {
		t.Fatalf("%d processes in the cgroup, %d in the group; want 3 and 2 (one setsid)", n, g)
	}

	stale, err := KillStale(dir, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(stale) != 1 || stale[0].Killed != 3 || stale[0].Cgroup != c.path() {
		t.Fatalf("stale %+v, want 3 killed in %s", stale, c.path())
	}
	<-reaped
	if _, err := os.Stat(c.path()); !os.IsNotExist(err) {
		t.Fatalf("cgroup left: %v", err)
	}
}

// A pid file naming a directory that is no cgroup still has its group
// killed and is removed, with an error.
func TestKillStaleWithABogusCgroup(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	if err := writePIDFile(filepath.Join(dir, "task_d.pid"), cmd.Process.Pid, dir); err != nil {
		t.Fatal(err)
	}
	stale, err := KillStale(dir, 5*time.Second)
	if err == nil || len(stale) != 0 {
		t.Fatalf("bogus cgroup accepted: %+v", stale)
	}
	select {
	case <-reaped:
	case <-time.After(5 * time.Second):
		t.Fatal("the group was spared")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "*.pid")); len(left) != 0 {
		t.Fatalf("pid files left: %v", left)
	}
}

// KillStale removes the empty task cgroups of a supervisor that is gone,
// but not those just made, nor those of a live one.
func TestKillStaleSweepsEmptyCgroupsOfTheDead(t *testing.T) {
	iso := Isolation()
	if !iso.Cgroups {
		t.Skipf("per-task cgroups unavailable here (%s)", iso.Reason)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := gone.Process.Pid
	old, fresh, mine := filepath.Join(iso.Base, fmt.Sprintf("old-%d-0badcafe", dead)), filepath.Join(iso.Base, fmt.Sprintf("fresh-%d-0badcafe", dead)), filepath.Join(iso.Base, fmt.Sprintf("mine-%d-0badcafe", os.Getpid()))
	for _, d := range []string{old, fresh, mine} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(d) })
	}
	hourAgo := time.Now().Add(-time.Hour)
	for _, d := range []string{old, mine} {
		if err := os.Chtimes(d, hourAgo, hourAgo); err != nil {
			t.Skipf("cannot date a cgroup back here: %v", err)
		}
	}
	if _, err := KillStale(t.TempDir(), time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("empty cgroup of a dead supervisor kept: %v", err)
	}
	for _, d := range []string{fresh, mine} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
}
