package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/testkit"
)

// runFlmngr runs the built binary and returns its exit code and stderr.
func runFlmngr(t *testing.T, args ...string) (int, string) {
	t.Helper()
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "FLMNGR_DATA=", "FLMNGR_LISTEN=", "FLMNGR_HTTP=", "FLMNGR_NATS=")
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("flmngr %s still running after 30s: a startup failure must end it", strings.Join(args, " "))
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, errOut.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), errOut.String()
	}
	t.Fatal(err)
	return 0, ""
}

// Every way flmngr up cannot start ends it with status 1 and one line that
// names the cause: no panic, no hang, no wall of logs.
func TestStartupFailuresAreOneLine(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	taken := busy.Addr().String()
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := func(name string) string { return filepath.Join(dir, name) }

	// A deployment that holds its data directory.
	held := data("held")
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	up := exec.Command(bin, "up", "--data", held, "--listen", testkit.FreeAddr(t), "--http", "")
	up.Env = os.Environ()
	var upOut syncBuf
	up.Stdout = &upOut
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = up.Process.Kill(); _ = up.Wait() }()
	if !testkit.Until(20*time.Second, func() bool { return strings.Contains(upOut.String(), "Stop with Ctrl-C") }) {
		t.Fatalf("flmngr up did not start: %s", upOut.String())
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nats_port_busy", []string{"up", "--data", data("a"), "--listen", taken, "--http", ""}, "NATS address " + taken + ": address already in use"},
		{"http_port_busy", []string{"up", "--data", data("b"), "--listen", testkit.FreeAddr(t), "--http", taken}, "HTTP address " + taken + ": address already in use"},
		{"data_in_use", []string{"up", "--data", held, "--listen", testkit.FreeAddr(t), "--http", ""}, "data directory " + held + " is in use by another flmngr process (pid"},
		{"data_not_a_directory", []string{"up", "--data", filepath.Join(file, "data"), "--listen", testkit.FreeAddr(t), "--http", ""}, "data directory " + filepath.Join(file, "data") + ": not a directory"},
		{"tls_files_missing", []string{"up", "--data", data("c"), "--listen", testkit.FreeAddr(t), "--http", "", "--tls-cert", data("nope.pem"), "--tls-key", data("nope.key")}, "TLS certificate " + data("nope.pem")},
		{"tls_half", []string{"up", "--data", data("d"), "--listen", testkit.FreeAddr(t), "--tls-cert", data("nope.pem")}, "TLS needs both a certificate and its key"},
		{"demo_port_busy", []string{"demo", "--data", data("e"), "--listen", taken, "--http", "", "--exit"}, "NATS address " + taken + ": address already in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := runFlmngr(t, tc.args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 {
				t.Fatalf("%d lines on stderr, want one:\n%s", len(lines), stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q does not say %q", stderr, tc.want)
			}
			if strings.Contains(stderr, "panic") || strings.Contains(stderr, "goroutine") {
				t.Fatalf("a panic: %s", stderr)
			}
		})
	}
}

// An agent stopped while the cloud is gone waits --drain for it, then
// says how many reports it could not deliver and where they wait; they
// arrive once both are back.
func TestAgentSaysWhatIsLeftWhenTheCloudIsGone(t *testing.T) {
	s := newSite(t)
	s.startUp()
	s.agentArgs = []string{"--drain", "1s"}
	s.startAgent("edge", "")
	s.shellTask("longtask", `echo '{"type":"info","info":"Started"}'; sleep 600`+"\n")
	s.waitFor("edge running the task", 30*time.Second, func() error {
		u, err := s.api.User(context.Background(), "edge")
		if err != nil || len(u.Running) != 1 {
			return fmt.Errorf("running %v (%v)", u.Running, err)
		}
		return nil
	})
	// What the client's process printed is there for the operator.
	s.waitFor("the client's output", 10*time.Second, func() error {
		if out := s.cli("logs", "longtask", "--client", "edge"); !strings.Contains(out, "client-edge") || !strings.Contains(out, "Started") {
			return fmt.Errorf("flmngr logs printed %q", out)
		}
		return nil
	})
	s.killUp()
	start := time.Now()
	s.signalAgent("edge", syscall.SIGTERM)
	out := s.agentOut["edge"].String()
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("the agent took %s to stop", took)
	}
	if !strings.Contains(out, "reports not delivered within 1s (the cloud is unreachable); they are kept in "+filepath.Join(s.dir, "agents", "edge", "outbox.jsonl")) {
		t.Fatalf("the agent did not say what is left:\n%s", out)
	}
	s.startUp()
	s.startAgent("edge", "")
	s.waitFor("the interrupted run reported", 30*time.Second, func() error {
		if n := count(s.timeline(projections.TimelineQuery{Client: "edge"}), events.ClientTaskInterruptedV1, "longtask"); n != 1 {
			return fmt.Errorf("%d interruptions recorded", n)
		}
		return nil
	})
}
