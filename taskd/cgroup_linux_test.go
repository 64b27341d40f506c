//go:build linux

package taskd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestFindTheCgroup2Mount(t *testing.T) {
	hybrid := `25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
34 25 0:29 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
35 34 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
36 34 0:31 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
`
	unified := `30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	// A container that sees the host's hierarchy from its own cgroup on.
	container := `40 30 0:37 /docker/abc /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw
41 30 0:38 / /mnt/with\040space rw,relatime - cgroup2 cgroup2 rw
`
	for _, c := range []struct {
		mountinfo, own, mount, dir string
		ok                         bool
	}{
		{hybrid, "/", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/unified", true},
		{hybrid, "/user.slice/session-1.scope", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/unified/user.slice/session-1.scope", true},
		{unified, "/system.slice/flmngr.service", "/sys/fs/cgroup", "/sys/fs/cgroup/system.slice/flmngr.service", true},
		{container, "/docker/abc", "/sys/fs/cgroup", "/sys/fs/cgroup", true},
		{container, "/docker/abc/x", "/sys/fs/cgroup", "/sys/fs/cgroup/x", true},
		{container, "/docker/abcdef", "/mnt/with space", "/mnt/with space/docker/abcdef", true},
		{"36 34 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "/", "", "", false},
	} {
		mount, dir, ok := cgroup2Dir([]byte(c.mountinfo), c.own)
		if mount != c.mount || dir != c.dir || ok != c.ok {
			t.Errorf("own %s: %q %q %v, want %q %q %v", c.own, mount, dir, ok, c.mount, c.dir, c.ok)
		}
	}
}

func TestOwnCgroup(t *testing.T) {
	for in, want := range map[string]string{
		"0::/\n": "/",
		"12:pids:/x\n1:name=systemd:/y\n0::/user.slice/a:b.scope\n": "/user.slice/a:b.scope",
		"4:memory:/process_api/8076\n":                              "",
	} {
		if got, ok := ownCgroup([]byte(in)); got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", in, got, ok, want)
		}
	}
}

func TestReadKeyed(t *testing.T) {
	f := filepath.Join(t.TempDir(), "memory.events")
	os.WriteFile(f, []byte("low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 1\n"), 0o644)
	ev := readKeyed(f)
	if ev["oom"] != 1 || ev["oom_kill"] != 1 || ev["max"] != 12 || len(ev) != 6 {
		t.Fatalf("events %v", ev)
	}
}

// Without cgroup.kill (Linux < 5.14) a cgroup is killed process by
// process, again until it is empty: here with a grandchild that left the
// group and children that keep forking.
func TestCgroupKillOneByOne(t *testing.T) {
	iso := Isolation()
	if !iso.Cgroups {
		t.Skipf("per-task cgroups unavailable here (%s)", iso.Reason)
	}
	c, err := newCgroup(iso, "one-by-one", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", `setsid sleep 600 & while :; do sleep 600 & done`)
	cmd.SysProcAttr = procAttr(c)
	err = cmd.Start()
	c.started()
	if err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(c.procs()) < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(c.procs()); n < 5 {
		t.Fatalf("%d processes in the cgroup", n)
	}
	for len(c.procs()) > 0 && time.Now().Before(deadline) {
		c.killEach()
		time.Sleep(time.Millisecond)
	}
	if left := c.procs(); len(left) > 0 {
		t.Fatalf("processes %v left", left)
	}
	<-reaped
	if err := c.remove(time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestAllocationFailed(t *testing.T) {
	for _, c := range []struct {
		exception string
		logs      []string
		want      bool
	}{
		{"", []string{"tail: memory exhausted"}, true},
		{"MemoryError", nil, true},
		{"", []string{"fatal error: runtime: out of memory"}, true},
		{"", []string{"terminate called after throwing an instance of 'std::bad_alloc'"}, true},
		{"", []string{"mmap: Cannot allocate memory"}, true},
		{"CUDA out of memory. Tried to allocate 2.00 GiB", nil, false},
		{"", []string{"Traceback", "ValueError: bad input"}, false},
	} {
		if got := allocationFailed(c.exception, c.logs); got != c.want {
			t.Errorf("%q %q: %v", c.exception, c.logs, got)
		}
	}
}

// A task may make cgroups in its own (as root, or with delegation): they
// are killed and removed with it.
func TestCgroupRemovedWithTheCgroupsMadeInIt(t *testing.T) {
	iso := Isolation()
	if !iso.Cgroups {
		t.Skipf("per-task cgroups unavailable here (%s)", iso.Reason)
	}
	c, err := newCgroup(iso, "nested", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	inner := filepath.Join(c.path(), "inner")
	if err := os.Mkdir(inner, 0o755); err != nil {
		_ = c.remove(time.Second)
		t.Skipf("cannot make a cgroup in a task's cgroup here: %v", err)
	}
	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = procAttr(c)
	err = cmd.Start()
	c.started()
	if err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	if err := writeFile(filepath.Join(inner, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	if err := c.remove(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	<-reaped
	if _, err := os.Stat(c.path()); !os.IsNotExist(err) {
		t.Fatalf("cgroup left: %v", err)
	}
}
