package features

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cucumber/godog"
)

// process is a flmngr binary run by a scenario: `flmngr up` or `flmngr
// client`. Its output goes to a log file shown when the scenario fails.
type process struct {
	name string
	args []string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProcess(dir, name string, args ...string) (*process, error) {
	p := &process{name: name, args: args, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// signal sends sig and waits up to timeout for the process to exit.
func (p *process) signal(sig syscall.Signal, timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s did not exit %s after %s", p.name, timeout, sig)
	}
}

func (p *process) terminate() {
	if p.signal(syscall.SIGTERM, 15*time.Second) != nil {
		_ = p.signal(syscall.SIGKILL, 5*time.Second)
	}
}

func (wd *world) dumpLogs(t godog.TestingT) {
	if t == nil {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(wd.dir, "*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		t.Logf("--- %s\n%s", filepath.Base(l), b)
	}
}
