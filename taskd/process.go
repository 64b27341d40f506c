package taskd

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config describes a task process.
type Config struct {
	// Argv is the program and its arguments; Argv[0] is looked up in PATH
	// unless it contains a slash.
	Argv []string
	// Dir is the working directory.
	Dir string
	// Env is the whole environment of the child (nil: this process's).
	Env []string
	// StopSignal asks the process to stop (default SIGTERM).
	StopSignal syscall.Signal
	// Grace is how long Stop waits after StopSignal before SIGKILL
	// (default 5s).
	Grace time.Duration
	// KillWait bounds the wait after SIGKILL (default 5s).
	KillWait time.Duration
	// DrainWait bounds how long output is still read after the process
	// exited, when something it left behind holds its pipes (default 2s).
	DrainWait time.Duration
	// MaxLine bounds a line; longer lines are cut and kept as log lines
	// (default 64 KiB).
	MaxLine int
	// LastLogs is how many log lines the exit keeps (default 20).
	LastLogs int
	// PIDFile, when set, records the child's process group and cgroup
	// while it runs (see KillStale), and is removed once they are gone.
	PIDFile string
	// Name labels the process: its cgroup is named after it (default: the
	// pid file's name, else the program's).
	Name string
	// Limits bound what the process and everything it starts may use; see
	// the package documentation for how each is enforced.
	Limits Limits
	// OnMessage gets every message, one call at a time, in the order each
	// stream produced them. It should return quickly: the child blocks
	// when its pipe is full.
	OnMessage func(Message)
}

// Validate reports whether the configuration can start a process.
func (c Config) Validate() error {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return errors.New("taskd: no program to run")
	}
	if c.Grace < 0 || c.KillWait < 0 || c.MaxLine < 0 {
		return errors.New("taskd: negative duration or size")
	}
	if err := c.Limits.Validate(); err != nil {
		return fmt.Errorf("taskd: %w", err)
	}
	return nil
}

// name is Name, or what it defaults to, made fit for a cgroup's name.
func (c Config) name() string {
	name := c.Name
	if name == "" && c.PIDFile != "" {
		name = strings.TrimSuffix(filepath.Base(c.PIDFile), ".pid")
	}
	if name == "" {
		name = filepath.Base(c.Argv[0])
	}
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, name)
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

func (c Config) withDefaults() Config {
	c.StopSignal = cmp.Or(c.StopSignal, syscall.SIGTERM)
	c.Grace = cmp.Or(c.Grace, 5*time.Second)
	c.KillWait = cmp.Or(c.KillWait, 5*time.Second)
	c.DrainWait = cmp.Or(c.DrainWait, 2*time.Second)
	c.MaxLine = cmp.Or(c.MaxLine, 64<<10)
	c.LastLogs = cmp.Or(c.LastLogs, 20)
	if c.OnMessage == nil {
		c.OnMessage = func(Message) {}
	}
	return c
}

// Outcome is how a task process ended.
type Outcome string

// Outcomes. Only Finished is a success; Stopped is neither.
const (
	OutcomeFinished   Outcome = "finished"
	OutcomeErrored    Outcome = "errored"
	OutcomeStopped    Outcome = "stopped"
	OutcomeUnreported Outcome = "unreported"
)

// Exit describes how a process ended.
type Exit struct {
	Outcome Outcome
	// Code is the exit code, -1 when a signal ended the process.
	Code     int
	Signal   string
	Duration time.Duration
	// Exception is the text of the error the process reported, if any,
	// or the limit that ended it.
	Exception string
	LastLogs  []string
	// Limit names the limit that ended the process, if one did: "memory
	// limit 2GiB exceeded", "pids limit 256 reached", "walltime limit 2h
	// exceeded". The outcome is then Errored, with Limit as Exception.
	Limit string
	// Leftovers tells what of the task could not be ended (processes in
	// its cgroup that outlived KillWait); the pid file then stays, for
	// KillStale. Empty normally.
	Leftovers string
}

// Process is a running task process.
type Process struct {
	cfg   Config
	cmd   *exec.Cmd
	pid   int
	start time.Time

	cg          *cgroup     // nil: the process group only
	rlimitAS    bool        // memory limited by RLIMIT_AS
	enforcement string      // how the limits are enforced
	wallTimer   *time.Timer // nil without a walltime limit

	mu       sync.Mutex // serialises OnMessage and guards the fields below
	finished bool
	errored  bool
	errText  string
	lastLogs []string
	exited   bool   // the child was reaped
	limit    string // the walltime limit, once it stopped the process

	stopOnce sync.Once
	stopped  chan struct{} // closed when Stop was called
	done     chan struct{} // closed when the exit is known
	exit     Exit
	readers  sync.WaitGroup
	pipes    []*os.File
}

// Start starts a process. Messages go to cfg.OnMessage until Done is
// closed; Exit then tells how it ended. Where Isolation finds cgroups the
// process starts in a cgroup of its own (see Cgroup).
func Start(cfg Config) (*Process, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	iso := Isolation()
	p := &Process{cfg: cfg, stopped: make(chan struct{}), done: make(chan struct{}), enforcement: iso.enforcement(cfg.Limits, true)}
	if iso.Cgroups {
		cg, err := newCgroup(iso, cfg.name(), cfg.Limits)
		if err != nil {
			return nil, fmt.Errorf("taskd: %w", err)
		}
		p.cg = cg
	}
	if err := p.startChild(); err != nil {
		_ = p.cg.remove(cfg.KillWait)
		return nil, err
	}
	if l := cfg.Limits.Memory; l > 0 && rlimitFallback && (p.cg == nil || !p.cg.memory) {
		if err := limitAddressSpace(p.pid, l); err != nil {
			p.abort()
			return nil, fmt.Errorf("taskd: memory limit: %w", err)
		}
		p.rlimitAS = true
	}
	if cfg.PIDFile != "" {
		if err := writePIDFile(cfg.PIDFile, p.pid, p.cg.path()); err != nil {
			p.abort()
			return nil, fmt.Errorf("taskd: pid file: %w", err)
		}
	}
	if cfg.Limits.WallTime > 0 {
		p.wallTimer = time.AfterFunc(cfg.Limits.WallTime, p.wallTimeUp)
	}
	p.readers.Add(2)
	go p.read("stdout", p.pipes[0])
	go p.read("stderr", p.pipes[1])
	go p.wait()
	return p, nil
}

// startChild starts the child with its output on two pipes.
func (p *Process) startChild() error {
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("taskd: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return fmt.Errorf("taskd: %w", err)
	}
	cmd := exec.Command(p.cfg.Argv[0], p.cfg.Argv[1:]...)
	cmd.Dir, cmd.Env = p.cfg.Dir, p.cfg.Env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = outW, errW
	// Own process group, so a stop reaches everything the task started;
	// SIGKILL if this supervisor dies, so no child outlives it; and its
	// cgroup from the first instruction on, so that what leaves the group
	// (setsid) is still within reach.
	cmd.SysProcAttr = procAttr(p.cg)
	err = cmd.Start()
	p.cg.started()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return fmt.Errorf("taskd: start %s: %w", p.cfg.Argv[0], err)
	}
	p.cmd, p.pipes = cmd, []*os.File{outR, errR}
	p.pid, p.start = cmd.Process.Pid, time.Now()
	return nil
}

// abort ends a child Start cannot hand over.
func (p *Process) abort() {
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	p.cg.kill()
	_, _ = p.cmd.Process.Wait()
	_ = p.cg.remove(p.cfg.KillWait)
	for _, f := range p.pipes {
		f.Close()
	}
}

// PID is the process id (and process group id) of the child.
func (p *Process) PID() int { return p.pid }

// Cgroup is the directory of the process's cgroup, "" when it runs in
// its process group only. The cgroup is removed once the process ended.
func (p *Process) Cgroup() string { return p.cg.path() }

// Enforcement says how each of the process's limits is enforced here,
// e.g. "memory=2GiB by RLIMIT_AS (...), cpu=2 not enforced (...)"; ""
// without limits.
func (p *Process) Enforcement() string { return p.enforcement }

// Done is closed once the process has exited and every message of it was
// handed to OnMessage.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exit tells how the process ended; it is valid once Done is closed.
func (p *Process) Exit() Exit {
	<-p.done
	return p.exit
}

// read hands every line of one stream to handle, cutting lines longer than
// MaxLine.
func (p *Process) read(stream string, r *os.File) {
	defer p.readers.Done()
	br := bufio.NewReaderSize(r, p.cfg.MaxLine)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			head := string(line)
			cut := 0
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				cut += len(line)
			}
			p.handle(Message{Kind: KindLog, Stream: stream, Text: fmt.Sprintf("%s… [line cut: %d more bytes]", toValid(head), cut)})
		} else if len(line) > 0 {
			p.handle(Parse(stream, line))
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				p.handle(Message{Kind: KindLog, Stream: stream, Text: "read error: " + err.Error()})
			}
			return
		}
	}
}

// toValid is the head of a cut line as log text: whatever it holds, it
// is not a report.
func toValid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

func (p *Process) handle(m Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case m.IsFinished():
		p.finished = true
	case m.Kind == KindError:
		if !p.errored {
			p.errored, p.errText = true, m.Text
		}
	case m.Kind == KindLog:
		p.lastLogs = append(p.lastLogs, m.Text)
		if len(p.lastLogs) > p.cfg.LastLogs {
			p.lastLogs = p.lastLogs[len(p.lastLogs)-p.cfg.LastLogs:]
		}
	}
	p.cfg.OnMessage(m)
}

// wait reaps the child, kills whatever it left in its group and cgroup,
// lets the readers drain for a bounded time and records the exit once.
func (p *Process) wait() {
	state, err := p.cmd.Process.Wait()
	dur := time.Since(p.start)
	p.mu.Lock()
	p.exited = true
	p.mu.Unlock()
	stoppedFirst := false // a Stop came before the exit
	select {
	case <-p.stopped:
		stoppedFirst = true
	default:
	}
	if p.wallTimer != nil {
		p.wallTimer.Stop()
	}
	// Leftovers of the task (grandchildren) die with it: those in its
	// group, and those in its cgroup, which holds what left the group.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	p.cg.kill()
	cgLimit := p.cg.limitHit(p.cfg.Limits)
	cgErr := p.cg.remove(p.cfg.KillWait)
	if p.cfg.PIDFile != "" && cgErr == nil {
		_ = os.Remove(p.cfg.PIDFile)
	}
	drained := make(chan struct{})
	go func() { p.readers.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(p.cfg.DrainWait):
		for _, f := range p.pipes {
			f.Close()
		}
		<-drained
	}
	for _, f := range p.pipes {
		f.Close()
	}
	ex := Exit{Code: -1, Duration: dur}
	if err != nil {
		ex.Exception = "wait: " + err.Error()
	} else {
		ex.Code = state.ExitCode()
		if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			ex.Signal = ws.Signal().String()
		}
	}
	if cgErr != nil {
		ex.Leftovers = cgErr.Error()
	}
	p.mu.Lock()
	ex.LastLogs = append([]string(nil), p.lastLogs...)
	ex.Limit = p.exitLimit(err == nil && ex.Code == 0, stoppedFirst, cgLimit)
	select {
	case <-p.stopped:
		ex.Outcome = OutcomeStopped
	default:
	}
	switch {
	case ex.Limit != "":
		ex.Outcome, ex.Exception = OutcomeErrored, ex.Limit
	case p.errored:
		ex.Outcome, ex.Exception = OutcomeErrored, p.errText
	case p.finished:
		ex.Outcome = OutcomeFinished
	case ex.Outcome == "":
		ex.Outcome = OutcomeUnreported
	}
	p.mu.Unlock()
	p.exit = ex
	close(p.done)
}

// Stop asks the process group to stop with StopSignal, waits Grace, then
// kills the group and the cgroup and waits at most KillWait (or until ctx
// ends). It returns the exit. A process that reported an error or
// "Finished", or that a limit ended, before it was stopped keeps that
// outcome.
func (p *Process) Stop(ctx context.Context) (Exit, error) {
	p.stopOnce.Do(func() { close(p.stopped) })
	return p.terminate(ctx)
}

// terminate is the signal, the grace and the kill of Stop.
func (p *Process) terminate(ctx context.Context) (Exit, error) {
	select {
	case <-p.done:
		return p.exit, nil
	default:
	}
	_ = syscall.Kill(-p.pid, p.cfg.StopSignal)
	if p.exitsWithin(p.cfg.Grace, ctx.Done()) {
		return p.exit, nil
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	p.cg.kill()
	if p.exitsWithin(p.cfg.KillWait, nil) {
		return p.exit, nil
	}
	return Exit{}, fmt.Errorf("taskd: pid %d still running %s after SIGKILL", p.pid, p.cfg.KillWait)
}

// exitsWithin waits at most d, or until stop closes, for the process to
// exit, and reports whether it did.
func (p *Process) exitsWithin(d time.Duration, stop <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
	case <-stop:
	}
	return false
}
