package taskd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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
	// PIDFile, when set, records the child's process group while it runs
	// (see KillStale), and is removed once the child is gone.
	PIDFile string
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
	return nil
}

func (c Config) withDefaults() Config {
	if c.StopSignal == 0 {
		c.StopSignal = syscall.SIGTERM
	}
	if c.Grace == 0 {
		c.Grace = 5 * time.Second
	}
	if c.KillWait == 0 {
		c.KillWait = 5 * time.Second
	}
	if c.DrainWait == 0 {
		c.DrainWait = 2 * time.Second
	}
	if c.MaxLine == 0 {
		c.MaxLine = 64 << 10
	}
	if c.LastLogs == 0 {
		c.LastLogs = 20
	}
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
	// Exception is the text of the error the process reported, if any.
	Exception string
	LastLogs  []string
}

// Process is a running task process.
type Process struct {
	cfg   Config
	cmd   *exec.Cmd
	pid   int
	start time.Time

	mu       sync.Mutex // serialises OnMessage and guards the fields below
	finished bool
	errored  bool
	errText  string
	lastLogs []string

	stopOnce sync.Once
	stopped  chan struct{} // closed when Stop was called
	done     chan struct{} // closed when the exit is known
	exit     Exit
	readers  sync.WaitGroup
	pipes    []*os.File
}

// Start starts a process. Messages go to cfg.OnMessage until Done is
// closed; Exit then tells how it ended.
func Start(cfg Config) (*Process, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("taskd: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("taskd: %w", err)
	}
	cmd := exec.Command(cfg.Argv[0], cfg.Argv[1:]...)
	cmd.Dir, cmd.Env = cfg.Dir, cfg.Env
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = outW, errW
	// Own process group, so a stop reaches everything the task started;
	// and SIGKILL if this supervisor dies, so no child outlives it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &Process{cfg: cfg, cmd: cmd, stopped: make(chan struct{}), done: make(chan struct{}), pipes: []*os.File{outR, errR}}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("taskd: start %s: %w", cfg.Argv[0], err)
	}
	p.pid, p.start = cmd.Process.Pid, time.Now()
	if cfg.PIDFile != "" {
		if err := writePIDFile(cfg.PIDFile, p.pid); err != nil {
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
			_, _ = cmd.Process.Wait()
			outR.Close()
			errR.Close()
			return nil, fmt.Errorf("taskd: pid file: %w", err)
		}
	}
	p.readers.Add(2)
	go p.read("stdout", outR)
	go p.read("stderr", errR)
	go p.wait()
	return p, nil
}

// PID is the process id (and process group id) of the child.
func (p *Process) PID() int { return p.pid }

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

// wait reaps the child, kills whatever it left in its group, lets the
// readers drain for a bounded time and records the exit once.
func (p *Process) wait() {
	state, err := p.cmd.Process.Wait()
	dur := time.Since(p.start)
	// Leftovers of the task (grandchildren) die with it.
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	if p.cfg.PIDFile != "" {
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
	p.mu.Lock()
	ex.LastLogs = append([]string(nil), p.lastLogs...)
	select {
	case <-p.stopped:
		ex.Outcome = OutcomeStopped
	default:
	}
	switch {
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
// kills the group and waits at most KillWait (or until ctx ends). It
// returns the exit. A process that reported an error or "Finished" before
// it was stopped keeps that outcome.
func (p *Process) Stop(ctx context.Context) (Exit, error) {
	p.stopOnce.Do(func() { close(p.stopped) })
	select {
	case <-p.done:
		return p.exit, nil
	default:
	}
	_ = syscall.Kill(-p.pid, p.cfg.StopSignal)
	grace := time.NewTimer(p.cfg.Grace)
	defer grace.Stop()
	select {
	case <-p.done:
		return p.exit, nil
	case <-grace.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-p.pid, syscall.SIGKILL)
	kill := time.NewTimer(p.cfg.KillWait)
	defer kill.Stop()
	select {
	case <-p.done:
		return p.exit, nil
	case <-kill.C:
		return Exit{}, fmt.Errorf("taskd: pid %d still running %s after SIGKILL", p.pid, p.cfg.KillWait)
	}
}
