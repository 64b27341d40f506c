package taskd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
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
	if err := writePIDFile(filepath.Join(dir, "task_a.pid"), pid); err != nil {
		t.Fatal(err)
	}
	// The grandchildren take a moment to exist.
	start, _ := startTime(pid)
	deadline := time.Now().Add(5 * time.Second)
	for len(groupMembers(pid, start)) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
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
	if _, err := os.Stat(f); err != nil {
		t.Fatalf("pid file while running: %v", err)
	}
	<-p.Done()
	if _, err := os.Stat(f); !os.IsNotExist(err) {
		t.Fatalf("pid file after exit: %v", err)
	}
}
