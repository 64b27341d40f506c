package taskd

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A pid file records a child's process group and the moment it started,
// and its cgroup if it has one, so that a supervisor killed with SIGKILL
// can, when it comes back, find what its children left running and end
// it. (Pdeathsig already kills the direct child with its parent; what the
// child itself started lives on in its group, and what left the group in
// its cgroup.) The start time tells a recorded process from a later one
// that got the same number; a cgroup's name is never used twice.
//
// The file is one line, "<pid> <start>" or "<pid> <start> <cgroup
// directory>": readers of the older form read the newer one as well.

// writePIDFile records pid (its group), and the directory of its cgroup
// unless that is "", in path.
func writePIDFile(path string, pid int, cgroup string) error {
	start, err := startTime(pid)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	line := fmt.Sprintf("%d %d", pid, start)
	if cgroup != "" {
		line += " " + cgroup
	}
	if err := os.WriteFile(tmp, []byte(line+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Stale is a process group, and cgroup, a dead supervisor left behind.
type Stale struct {
	File   string // the pid file
	PGID   int
	Cgroup string // the cgroup's directory, if the file named one still there
	Killed int    // processes of the group or cgroup still alive, now killed
}

// KillStale ends every process group and cgroup recorded by a pid file in
// dir (files *.pid), removes the cgroups and the files: it is for a
// supervisor starting up, which can have no children yet, so whatever the
// files name was left by an earlier life. It waits up to wait for the
// killed processes to go. It also removes the empty task cgroups of
// supervisors that are gone.
func KillStale(dir string, wait time.Duration) ([]Stale, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pid"))
	if err != nil {
		return nil, err
	}
	var out []Stale
	var errs []error
	for _, f := range files {
		s, err := killStale(f, wait)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	sweepCgroups()
	return out, errors.Join(errs...)
}

func killStale(file string, wait time.Duration) (Stale, error) {
	s := Stale{File: file}
	b, err := os.ReadFile(file)
	if err != nil {
		return s, err
	}
	var start uint64
	if _, err := fmt.Sscanf(string(b), "%d %d", &s.PGID, &start); err != nil || s.PGID <= 1 {
		_ = os.Remove(file)
		return s, fmt.Errorf("pid file %s: unreadable (%q); removed", file, b)
	}
	// A cgroup that is not one is no reason to spare the group.
	var cg *cgroup
	var cgErr error
	if f := strings.SplitN(strings.TrimSpace(string(b)), " ", 3); len(f) == 3 {
		if cg, cgErr = openCgroup(strings.TrimSpace(f[2])); cgErr != nil {
			cgErr = fmt.Errorf("pid file %s: %w; its group killed, the file removed", file, cgErr)
		}
		s.Cgroup = cg.path()
	}
	left := func() []int {
		pids := groupMembers(s.PGID, start)
		for _, pid := range cg.procs() {
			if !slices.Contains(pids, pid) {
				pids = append(pids, pid)
			}
		}
		return pids
	}
	for _, pid := range left() {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			s.Killed++
		}
	}
	cg.kill()
	deadline := time.Now().Add(wait)
	for len(left()) > 0 && time.Now().Before(deadline) {
		cg.kill()
		time.Sleep(10 * time.Millisecond)
	}
	if pids := left(); len(pids) > 0 {
		return s, fmt.Errorf("processes %v of group %d did not die", pids, s.PGID)
	}
	if err := cg.remove(time.Until(deadline)); err != nil {
		return s, err
	}
	if cgErr != nil {
		_ = os.Remove(file)
		return s, cgErr
	}
	return s, os.Remove(file)
}

// groupMembers lists the live processes of group pgid started no earlier
// than start (in clock ticks since boot, as /proc/<pid>/stat says).
func groupMembers(pgid int, start uint64) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.pgrp != pgid || st.start < start || st.state == 'Z' {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

type procStat struct {
	state byte
	pgrp  int
	start uint64
}

// readStat reads the fields of /proc/<pid>/stat that matter here. The
// command name (field 2) may hold spaces and parentheses: fields are
// counted from the last ')'.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("bad stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22 (starttime).
	if len(f) < 20 || len(f[0]) == 0 {
		return procStat{}, errors.New("short stat")
	}
	pgrp, err1 := strconv.Atoi(f[2])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, errors.New("bad stat fields")
	}
	return procStat{state: f[0][0], pgrp: pgrp, start: start}, nil
}

func startTime(pid int) (uint64, error) {
	st, err := readStat(pid)
	return st.start, err
}

// EndEarlierLife is KillStale for a supervisor starting up (waiting up to
// 10 s): each group it had to kill is logged, and an error says whose
// processes could not be ended.
func EndEarlierLife(dir, who string, log *slog.Logger) error {
	stale, err := KillStale(dir, 10*time.Second)
	for _, st := range stale {
		if st.Killed > 0 {
			log.Warn("killed processes an earlier life left", "pid_file", st.File, "group", st.PGID, "processes", st.Killed)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: processes of an earlier life: %w", who, err)
	}
	return nil
}
