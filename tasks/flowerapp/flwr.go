package flowerapp

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// CLI runs the flwr command against one app and federation. flwr exits 0
// for most failures and says so in its JSON ("success": false), so every
// answer is read, never the exit code alone.
type CLI struct {
	// Program is the flwr command (default "flwr", looked up in PATH).
	Program    string
	App        string
	Federation string
	// Env is the commands' environment (nil: this process's).
	Env []string
	// Timeout bounds one command (default 60s).
	Timeout time.Duration
}

// Run states of a Flower run, as `flwr ls` reports them.
const (
	StatusCompleted = "finished:completed"
	StatusFailed    = "finished:failed"
	StatusStopped   = "finished:stopped"
)

// RunInfo is what `flwr run --format json` answers.
type RunInfo struct {
	RunID   string // an unsigned 64-bit integer, kept as text
	FabHash string
}

// RunStatus is one run as `flwr ls --format json` lists it.
type RunStatus struct {
	Status                                  string
	Elapsed, CreatedAt, RunningAt, Finished string
}

// Done reports whether the run is over (finished:…).
func (s RunStatus) Done() bool { return strings.HasPrefix(s.Status, "finished:") }

type answer struct {
	Success bool        `json:"success"`
	Error   string      `json:"error-message"`
	RunID   json.Number `json:"run-id"`
	FabHash string      `json:"fab-hash"`
	NodeID  json.Number `json:"node-id"`
	Runs    []struct {
		RunID     json.Number `json:"run-id"`
		Status    string      `json:"status"`
		Elapsed   string      `json:"elapsed"`
		CreatedAt string      `json:"created-at"`
		RunningAt string      `json:"running-at"`
		Finished  string      `json:"finished-at"`
	} `json:"runs"`
}

func (c CLI) command(ctx context.Context, args ...string) ([]byte, []byte, error) {
	prog := c.Program
	prog = cmp.Or(prog, "flwr")
	timeout := c.Timeout
	timeout = cmp.Or(timeout, 60*time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = c.Env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("flwr %s: %w", args[0], ctx.Err())
	}
	return stdout.Bytes(), stderr.Bytes(), err
}

// jsonCommand runs a flwr command with --format json and reads its answer.
func (c CLI) jsonCommand(ctx context.Context, args ...string) (answer, error) {
	args = append(args, "--format", "json")
	out, errOut, err := c.command(ctx, args...)
	var a answer
	i := bytes.IndexByte(out, '{')
	if i < 0 {
		if err == nil {
			err = errors.New("no JSON answer")
		}
		return a, fmt.Errorf("flwr %s: %w: %s", args[0], err, lastLines(string(out)+string(errOut), 3))
	}
	d := json.NewDecoder(bytes.NewReader(out[i:]))
	d.UseNumber()
	if derr := d.Decode(&a); derr != nil {
		return a, fmt.Errorf("flwr %s: unreadable answer: %w", args[0], derr)
	}
	if !a.Success {
		return a, fmt.Errorf("flwr %s: %s", args[0], oneLine(a.Error))
	}
	return a, nil
}

// Submit starts a run of the app (`flwr run APP FED --format json`),
// with run config overrides ("key=value" pairs).
func (c CLI) Submit(ctx context.Context, runConfig []string) (RunInfo, error) {
	args := []string{"run", c.App, c.Federation}
	for _, rc := range runConfig {
		args = append(args, "--run-config", rc)
	}
	a, err := c.jsonCommand(ctx, args...)
	if err != nil {
		return RunInfo{}, err
	}
	if a.RunID == "" {
		return RunInfo{}, errors.New("flwr run: the answer has no run-id")
	}
	return RunInfo{RunID: a.RunID.String(), FabHash: a.FabHash}, nil
}

// Status reads a run's status (`flwr ls APP FED --run-id N --format json`).
func (c CLI) Status(ctx context.Context, runID string) (RunStatus, error) {
	a, err := c.jsonCommand(ctx, "ls", c.App, c.Federation, "--run-id", runID)
	if err != nil {
		return RunStatus{}, err
	}
	for _, r := range a.Runs {
		if r.RunID.String() == runID {
			return RunStatus{Status: r.Status, Elapsed: r.Elapsed, CreatedAt: r.CreatedAt, RunningAt: r.RunningAt, Finished: r.Finished}, nil
		}
	}
	return RunStatus{}, fmt.Errorf("flwr ls: run %s is not listed", runID)
}

// Stop stops a run (`flwr stop N APP FED --format json`).
func (c CLI) Stop(ctx context.Context, runID string) error {
	_, err := c.jsonCommand(ctx, "stop", runID, c.App, c.Federation)
	return err
}

// Register registers a SuperNode's public key (an OpenSSH public key
// file) with the SuperLink (`flwr supernode register KEY APP FED --format
// json`) and returns its node id.
func (c CLI) Register(ctx context.Context, keyFile string) (string, error) {
	a, err := c.jsonCommand(ctx, "supernode", "register", keyFile, c.App, c.Federation)
	if err != nil {
		return "", err
	}
	if a.NodeID == "" {
		return "", errors.New("flwr supernode register: the answer has no node-id")
	}
	return a.NodeID.String(), nil
}

// Unregister unregisters a SuperNode by its node id (`flwr supernode
// unregister NODE APP FED --format json`): its SuperNode is refused from
// then on, and its key can never be registered again.
func (c CLI) Unregister(ctx context.Context, node string) error {
	_, err := c.jsonCommand(ctx, "supernode", "unregister", node, c.App, c.Federation)
	return err
}

// Log returns the run's ServerApp log (`flwr log N APP FED --show`), which
// has no JSON form; flwr exits 1 for an unknown run.
func (c CLI) Log(ctx context.Context, runID string) (string, error) {
	out, errOut, err := c.command(ctx, "log", runID, c.App, c.Federation, "--show")
	if err != nil {
		return string(out), fmt.Errorf("flwr log: %w: %s", err, lastLines(string(out)+string(errOut), 3))
	}
	return string(out), nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return oneLine(strings.Join(lines, " "))
}
