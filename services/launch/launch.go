// Package launch builds the command line and environment of task
// processes, on the cloud and on clients alike, following the original's
// convention: "python3 <entry point> <workdir> [arguments...]" run in the
// task's directory, unless the task names its own command.
package launch

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Spec describes one task process.
type Spec struct {
	// Entry is the default program file (server.py or client.py).
	Entry string
	// Command, when set, replaces "python3 <Entry> <workdir>".
	Command []string
	// Arguments are appended, split on white space.
	Arguments string
	// WorkDir is the manager's work directory (it holds tasks/task_<id>);
	// TaskDir is the task's directory, the process's working directory.
	WorkDir, TaskDir string
	// Vars fill placeholders in Command: {workdir}, {taskdir}, {task},
	// {run}, {host}, {port}, {client}, {flmngr}, {python}.
	Vars map[string]string
}

// TaskDir is where a task's files live under a work directory, as in the
// original: <workdir>/tasks/task_<id>.
func TaskDir(workDir, taskID string) string {
	return filepath.Join(workDir, "tasks", "task_"+taskID)
}

// Argv returns the command line of a task process.
func Argv(s Spec) ([]string, error) {
	vars := map[string]string{"workdir": s.WorkDir, "taskdir": s.TaskDir}
	for k, v := range s.Vars {
		vars[k] = v
	}
	var argv []string
	if len(s.Command) == 0 {
		py, err := Python()
		if err != nil {
			return nil, err
		}
		argv = []string{py, s.Entry, s.WorkDir}
	} else {
		for _, a := range s.Command {
			x, err := expand(a, vars)
			if err != nil {
				return nil, err
			}
			argv = append(argv, x)
		}
	}
	return append(argv, strings.Fields(s.Arguments)...), nil
}

// expand fills {name} placeholders; {flmngr} and {python} are resolved on
// first use.
func expand(a string, vars map[string]string) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(a, '{')
		if i < 0 {
			b.WriteString(a)
			return b.String(), nil
		}
		j := strings.IndexByte(a[i:], '}')
		if j < 0 {
			b.WriteString(a)
			return b.String(), nil
		}
		name := a[i+1 : i+j]
		b.WriteString(a[:i])
		switch v, ok := vars[name]; {
		case ok:
			b.WriteString(v)
		case name == "flmngr":
			exe, err := os.Executable()
			if err != nil {
				return "", fmt.Errorf("{flmngr}: %w", err)
			}
			b.WriteString(exe)
		case name == "python":
			py, err := Python()
			if err != nil {
				return "", err
			}
			b.WriteString(py)
		default:
			b.WriteString(a[i : i+j+1])
		}
		a = a[i+j+1:]
	}
}

// Env is the environment of a task process: this process's, with Python
// unbuffered (report lines arrive as they are written) and the task's
// identity.
func Env(vars map[string]string) []string {
	env := append(os.Environ(), "PYTHONUNBUFFERED=1")
	for _, k := range []string{"task", "run", "host", "port", "client", "workdir", "taskdir"} {
		if v, ok := vars[k]; ok {
			env = append(env, "FLMNGR_"+strings.ToUpper(k)+"="+v)
		}
	}
	return env
}

var python struct {
	once sync.Once
	path string
	err  error
}

// Python returns the absolute path of the real python3 interpreter,
// resolved once: a shim in PATH (pyenv) costs tens of milliseconds on
// every start, the interpreter itself does not.
func Python() (string, error) {
	python.once.Do(func() {
		shim, err := exec.LookPath("python3")
		if err != nil {
			python.err = fmt.Errorf("python3 not found in PATH: install it or give the task its own command")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, shim, "-c", "import sys; print(sys.executable)").Output()
		if p := strings.TrimSpace(string(out)); err == nil && filepath.IsAbs(p) {
			python.path = p
			return
		}
		python.path = shim
	})
	return python.path, python.err
}
