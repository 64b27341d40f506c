package flowerapp

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// child is one Flower process the driver runs in its own process group,
// its output forwarded line by line.
type child struct {
	cmd  *exec.Cmd
	done chan struct{}
	read chan struct{} // closed once all its output is read
	err  error         // the exit, once done is closed
}

// startChild starts argv with env; every line it prints goes to onLine.
func startChild(argv, env []string, onLine func(string)) (*child, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = ownGroup()
	// An *os.File, so that Wait returns when the child exits even if
	// what it started still holds the pipe.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	err = cmd.Start()
	_ = pw.Close()
	if err != nil {
		_ = pr.Close()
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{}), read: make(chan struct{})}
	go func() {
		defer close(c.read)
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			onLine(sc.Text())
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// code is the exit code (-1 for a signal) once done is closed.
func (c *child) code() int { return c.cmd.ProcessState.ExitCode() }

// terminate sends SIGTERM to the child's group, then SIGKILL after grace.
func (c *child) terminate(grace time.Duration) {
	_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.done
	}
	// What the child left in its group (superexec, app processes) goes too.
	_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
}
