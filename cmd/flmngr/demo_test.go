package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/testkit"
)

// TestDemoRunsTheMainJob runs `flmngr demo --exit` as the README's first
// command does: a FedAvg run on MNIST with two local clients that ends
// with the task finished, its timeline and an accuracy of at least 0.85.
func TestDemoRunsTheMainJob(t *testing.T) {
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command(bin, "demo", "--data", data, "--listen", testkit.FreeAddr(t), "--http", "127.0.0.1:0", "--exit")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"round 3/3", "task.finished.v1", "client.task_started.v1", "STEP", "Final accuracy", "site-1 finished", "site-2 finished"} {
		if !strings.Contains(text, want) {
			t.Fatalf("demo output lacks %q:\n%s", want, text)
		}
	}
	m := regexp.MustCompile(`Final accuracy on the MNIST test set: ([0-9.]+)`).FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no final accuracy:\n%s", text)
	}
	if acc, _ := strconv.ParseFloat(m[1], 64); acc < 0.85 {
		t.Fatalf("final accuracy %v, want at least 0.85", acc)
	}
	if strings.Contains(text, "not delivered") {
		t.Fatalf("the demo left reports undelivered:\n%s", text)
	}

	// Everything the agents had to say about the run is in the log when
	// the demo has exited: their processes' exits included.
	st, err := cloud.OpenStopped(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	exited := map[string]bool{}
	if _, err := st.Log.Replay(context.Background(), eventlog.FollowOptions{}, func(e events.Envelope) error {
		if p, ok := e.Event.(*events.ClientTaskExited); ok && p.TaskID == demoTask && p.Run == "1" {
			exited[e.Aggregate.ID] = true
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if !exited["site-1"] || !exited["site-2"] {
		t.Fatalf("the log lacks the clients' exits of run 1: %v", exited)
	}

	// A second run prints its own timeline only.
	out, err = exec.Command(bin, "demo", "--data", data, "--listen", testkit.FreeAddr(t), "--http", "127.0.0.1:0", "--exit").CombinedOutput()
	if err != nil {
		t.Fatalf("second demo: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "site-1 finished") || !strings.Contains(string(out), "site-2 finished") {
		t.Fatalf("the second run's summary is incomplete:\n%s", out)
	}
	// Nothing of run 1 arrived after run 2 started (it would show in the
	// second run's timeline).
	st, err = cloud.OpenStopped(context.Background(), data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var start2 uint64
	var late []string
	if _, err := st.Log.Replay(context.Background(), eventlog.FollowOptions{}, func(e events.Envelope) error {
		if p, ok := e.Event.(*events.TaskStartRequested); ok && p.Run == "2" {
			start2 = e.Seq
		}
		if start2 != 0 && strings.Contains(string(mustEncode(t, e)), `"run":"1"`) {
			late = append(late, e.Type)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if start2 == 0 || len(late) > 0 {
		t.Fatalf("run 2 started at %d; events of run 1 after it: %v", start2, late)
	}
}

func mustEncode(t *testing.T, e events.Envelope) []byte {
	t.Helper()
	b, err := events.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
