package taskd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A pid file records a child's process group and the moment it started,
// so that a supervisor killed with SIGKILL can, when it comes back, find
// what its children left running and end it. (Pdeathsig already kills
// the direct child with its parent; what the child itself started lives
// on in its group.) The start time tells a recorded process from a later
// one that got the same number.

// writePIDFile records pid (its group) in path.
func writePIDFile(path string, pid int) error {
	start, err := startTime(pid)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", pid, start), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Stale is a process group a dead supervisor left behind.
type Stale struct {
	File   string // the pid file
	PGID   int
	Killed int // processes of the group still alive, now killed
}

// KillStale ends every process group recorded by a pid file in dir (files
// *.pid) and removes the files: it is for a supervisor starting up, which
// can have no children yet, so whatever the files name was left by an
// earlier life. It waits up to wait for the killed processes to go.
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
	pids := groupMembers(s.PGID, start)
	for _, pid := range pids {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			s.Killed++
		}
	}
	deadline := time.Now().Add(wait)
	for len(groupMembers(s.PGID, start)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := groupMembers(s.PGID, start); len(left) > 0 {
		return s, fmt.Errorf("processes %v of group %d did not die", left, s.PGID)
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
