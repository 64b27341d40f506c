//go:build linux

package taskd

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A task cgroup is a directory <Base>/<name>-<supervisor pid>-<random>.
// The child is cloned into it (clone3 with CLONE_INTO_CGROUP), so nothing
// it runs is ever outside; a stop kills the cgroup whole.

const cgroup2Magic = 0x63677270 // statfs f_type of cgroup2

// limitControllers are the cgroup controllers that enforce Limits.
var limitControllers = []string{"cpu", "memory", "pids"}

// detectIsolation finds the cgroup v2 hierarchy and this process's
// cgroup, makes Base, hands the limit controllers down to it where cgroup
// v2 allows, and proves a child can be started in a cgroup of its own.
func detectIsolation() IsolationInfo {
	var i IsolationInfo
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		i.Reason = "cannot read /proc/self/cgroup: " + err.Error()
		return i
	}
	own, ok := ownCgroup(self)
	if !ok {
		i.Reason = "this process is in no cgroup v2 (/proc/self/cgroup has no 0:: line)"
		return i
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		i.Reason = "cannot read /proc/self/mountinfo: " + err.Error()
		return i
	}
	mount, ownDir, ok := cgroup2Dir(mounts, own)
	if !ok {
		i.Reason = fmt.Sprintf("no cgroup2 mount holds this process's cgroup %s (cgroup v1 only?)", own)
		return i
	}
	i.Mount, i.Own = mount, own
	base := filepath.Join(ownDir, "flmngr")
	if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		why := ""
		switch {
		case errors.Is(err, fs.ErrPermission):
			why = " (the subtree is not delegated to this user)"
		case errors.Is(err, syscall.EROFS):
			why = " (the cgroup file system is mounted read-only)"
		}
		i.Reason = fmt.Sprintf("cannot make cgroups in %s: %v%s", ownDir, unwrapPath(err), why)
		return i
	}
	i.Offered = readWords(filepath.Join(ownDir, "cgroup.controllers"))
	i.Controllers, i.Note = handDown(ownDir, base, i.Offered)
	if err := probeCgroup(base); err != nil {
		i.Reason, i.Controllers, i.Note = err.Error(), nil, ""
		return i
	}
	_, err = os.Stat(filepath.Join(base, "cgroup.kill"))
	i.Cgroups, i.Base, i.KillFile = true, base, err == nil
	return i
}

// ownCgroup is the cgroup v2 path in /proc/self/cgroup (the 0:: line).
func ownCgroup(procCgroup []byte) (string, bool) {
	for line := range strings.Lines(string(procCgroup)) {
		if path, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "0::"); ok && strings.HasPrefix(path, "/") {
			return path, true
		}
	}
	return "", false
}

// cgroup2Dir finds, in /proc/self/mountinfo, a cgroup2 mount that shows
// the cgroup own, and the directory of own in it.
func cgroup2Dir(mountinfo []byte, own string) (mount, dir string, ok bool) {
	for line := range strings.Lines(string(mountinfo)) {
		pre, post, found := strings.Cut(line, " - ")
		f, fpost := strings.Fields(pre), strings.Fields(post)
		if !found || len(f) < 5 || len(fpost) < 1 || fpost[0] != "cgroup2" {
			continue
		}
		root, point := unescapeMount(f[3]), unescapeMount(f[4])
		rel, inside := strings.CutPrefix(own, root)
		if root == "/" {
			rel, inside = own, true
		}
		if !inside || (rel != "" && !strings.HasPrefix(rel, "/")) {
			continue
		}
		return point, filepath.Join(point, rel), true
	}
	return "", "", false
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// handDown enables the limit controllers for the task cgroups in base:
// first in ownDir's cgroup.subtree_control, so that base has them, then in
// base's. cgroup v2 hands no controller down from a cgroup that holds
// processes (but the root), and this process sits in ownDir: there it may
// fail. It answers the controllers task cgroups get, and why others are
// missing.
func handDown(ownDir, base string, offered []string) (got []string, note string) {
	var notes []string
	var missing []string
	for _, c := range limitControllers {
		if !slices.Contains(offered, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		list := strings.Join(offered, ", ")
		list = cmp.Or(list, "none")
		notes = append(notes, fmt.Sprintf("%s not offered to %s (offered: %s)", strings.Join(missing, ", "), ownDir, list))
	}
	for _, dir := range []string{ownDir, base} {
		if err := enableControllers(dir); err != nil {
			notes = append(notes, err.Error())
		}
	}
	enabled := readWords(filepath.Join(base, "cgroup.subtree_control"))
	for _, c := range limitControllers {
		if slices.Contains(enabled, c) {
			got = append(got, c)
		}
	}
	return got, strings.Join(notes, "; ")
}

// enableControllers writes +c to dir's cgroup.subtree_control for each
// limit controller dir has and does not yet hand down.
func enableControllers(dir string) error {
	has := readWords(filepath.Join(dir, "cgroup.controllers"))
	on := readWords(filepath.Join(dir, "cgroup.subtree_control"))
	var failed []string
	var last error
	for _, c := range limitControllers {
		if !slices.Contains(has, c) || slices.Contains(on, c) {
			continue
		}
		if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), "+"+c); err != nil {
			failed, last = append(failed, c), err
		}
	}
	if len(failed) == 0 {
		return nil
	}
	err := fmt.Errorf("%s not handed down by %s: %w", strings.Join(failed, ", "), dir, unwrapPath(last))
	if errors.Is(last, syscall.EBUSY) {
		err = fmt.Errorf("%w (it holds processes, this one among them)", err)
	}
	return err
}

// probeCgroup starts a child in a new cgroup under base: a program that
// does not exist, so that the answer ENOENT, from exec, proves the clone
// into the cgroup worked (clone3, Linux 5.7, and the right to move a
// process there).
func probeCgroup(base string) error {
	dir, err := makeCgroupDir(base, "probe")
	if err != nil {
		return fmt.Errorf("cannot make a cgroup in %s: %w", base, unwrapPath(err))
	}
	defer removeCgroupDir(dir, 2*time.Second)
	fd, err := syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cannot open cgroup %s: %w", dir, err)
	}
	defer syscall.Close(fd)
	prog := filepath.Join(dir, "no-such-program")
	_, err = syscall.ForkExec(prog, []string{prog}, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}})
	if !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("cannot start a process in a cgroup of its own under %s: %v", base, err)
	}
	return nil
}

// cgroup is the cgroup of one task process.
type cgroup struct {
	dir string
	fd  int // the directory, open until the child started; -1 after
	// memory and pids tell which of the limits the cgroup enforces.
	memory, pids bool
}

// newCgroup makes a cgroup for a task process named name, with the limits
// its controllers can enforce, and opens it for clone3.
func newCgroup(iso IsolationInfo, name string, l Limits) (*cgroup, error) {
	dir, err := makeCgroupDir(iso.Base, name)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	c := &cgroup{dir: dir, fd: -1}
	if err := c.setLimits(iso, l); err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	if c.fd, err = syscall.Open(dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0); err != nil {
		_ = os.Remove(dir)
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	return c, nil
}

func makeCgroupDir(base, name string) (string, error) {
	for {
		var r [4]byte
		_, _ = rand.Read(r[:])
		dir := filepath.Join(base, fmt.Sprintf("%s-%d-%x", name, os.Getpid(), r))
		err := os.Mkdir(dir, 0o755)
		if !errors.Is(err, fs.ErrExist) {
			return dir, err
		}
	}
}

// cgroupPeriod is the cpu.max period, in microseconds.
const cgroupPeriod = 100000

func (c *cgroup) setLimits(iso IsolationInfo, l Limits) error {
	if l.Memory > 0 && iso.Has("memory") {
		if err := writeFile(filepath.Join(c.dir, "memory.max"), strconv.FormatInt(l.Memory, 10)); err != nil {
			return err
		}
		// No swap, so that the limit is the memory; and an OOM kill ends
		// the task whole, not one of its processes. Both files may be
		// missing (no swap accounting, Linux < 4.19).
		for file, value := range map[string]string{"memory.swap.max": "0", "memory.oom.group": "1"} {
			if err := writeFile(filepath.Join(c.dir, file), value); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		c.memory = true
	}
	if l.CPU > 0 && iso.Has("cpu") {
		quota := max(int64(l.CPU*cgroupPeriod+0.5), 1000)
		if err := writeFile(filepath.Join(c.dir, "cpu.max"), fmt.Sprintf("%d %d", quota, cgroupPeriod)); err != nil {
			return err
		}
	}
	if l.PIDs > 0 && iso.Has("pids") {
		if err := writeFile(filepath.Join(c.dir, "pids.max"), strconv.Itoa(l.PIDs)); err != nil {
			return err
		}
		c.pids = true
	}
	return nil
}

// path is the cgroup's directory, "" for none.
func (c *cgroup) path() string {
	if c == nil {
		return ""
	}
	return c.dir
}

// started closes the directory once clone3 no longer needs it.
func (c *cgroup) started() {
	if c != nil && c.fd >= 0 {
		_ = syscall.Close(c.fd)
		c.fd = -1
	}
}

// kill kills every process in the cgroup: at once with cgroup.kill, else
// one by one (see killEach).
func (c *cgroup) kill() {
	if c == nil {
		return
	}
	if err := writeFile(filepath.Join(c.dir, "cgroup.kill"), "1"); err != nil {
		c.killEach()
	}
}

// killEach sends SIGKILL to every process cgroup.procs lists. A process
// may fork meanwhile: callers repeat until the cgroup is empty.
func (c *cgroup) killEach() {
	for _, pid := range c.procs() {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// procs lists the processes in the cgroup.
func (c *cgroup) procs() []int {
	if c == nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// remove kills what is left in the cgroup and removes it, trying until
// wait has passed.
func (c *cgroup) remove(wait time.Duration) error {
	if c == nil {
		return nil
	}
	c.started()
	return removeCgroupDir(c.dir, wait)
}

// removeCgroupDir removes a cgroup, and the cgroups a task may have made
// in it, killing what they hold until wait has passed.
func removeCgroupDir(dir string, wait time.Duration) error {
	c := &cgroup{dir: dir, fd: -1}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
			if left := c.procs(); len(left) > 0 {
				return fmt.Errorf("cgroup %s: processes %v did not die", dir, left)
			}
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		c.kill()
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() {
				_ = removeCgroupDir(filepath.Join(dir, e.Name()), time.Until(deadline))
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// limitHit names the limit the cgroup's events say was hit: an OOM kill
// at the memory limit, or a fork refused at the pids limit.
func (c *cgroup) limitHit(l Limits) string {
	if c == nil {
		return ""
	}
	if c.memory {
		// oom counts the times the cgroup's own limit was reached; an
		// oom_kill without it came from the host or an ancestor's limit.
		ev := readKeyed(filepath.Join(c.dir, "memory.events"))
		if ev["oom"] > 0 && ev["oom_kill"]+ev["oom_group_kill"] > 0 {
			return fmt.Sprintf("memory limit %s exceeded", formatBytes(l.Memory))
		}
	}
	if c.pids && readKeyed(filepath.Join(c.dir, "pids.events"))["max"] > 0 {
		return fmt.Sprintf("pids limit %d reached", l.PIDs)
	}
	return ""
}

// openCgroup is the cgroup a pid file recorded, if it is still there and
// is a cgroup v2 directory (nil if it is gone).
func openCgroup(dir string) (*cgroup, error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return nil, fmt.Errorf("cgroup %q: not a clean absolute path", dir)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	if st.Type != cgroup2Magic {
		return nil, fmt.Errorf("cgroup %s: not on a cgroup2 file system", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	return &cgroup{dir: dir, fd: -1}, nil
}

var taskCgroupName = regexp.MustCompile(`-([0-9]+)-[0-9a-f]{8}$`)

// sweepCgroups removes the empty task cgroups, a minute old at least, of
// supervisors that are gone (their pid, in the name, runs nothing). Those
// that still hold processes stay: only a pid file says whose they are.
func sweepCgroups() {
	iso := isolation()
	if !iso.Cgroups {
		return
	}
	entries, _ := os.ReadDir(iso.Base)
	for _, e := range entries {
		m := taskCgroupName.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue
		}
		// Not one just made, whose process is about to be cloned in.
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Minute {
			_ = syscall.Rmdir(filepath.Join(iso.Base, e.Name()))
		}
	}
}

// procAttr starts a task process in a process group of its own, killed
// if this process dies, and in its cgroup if it has one.
func procAttr(c *cgroup) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c != nil {
		a.UseCgroupFD, a.CgroupFD = true, c.fd
	}
	return a
}

// writeFile writes s to an existing file (cgroup files cannot be made).
func writeFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readWords reads a space-separated list, as cgroup.controllers.
func readWords(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

// readKeyed reads a "key value" file, as memory.events.
func readKeyed(path string) map[string]int64 {
	b, _ := os.ReadFile(path)
	m := map[string]int64{}
	for line := range bytes.Lines(b) {
		if k, v, ok := strings.Cut(strings.TrimSpace(string(line)), " "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				m[k] = n
			}
		}
	}
	return m
}

// unwrapPath drops the path and operation of a *fs.PathError, for
// messages that already name the file.
func unwrapPath(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}
