package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDemoRunsTheMainJob runs `flmngr demo --exit` as the README's first
// command does: a FedAvg run on MNIST with two local clients that ends
// with the task finished, its timeline and an accuracy of at least 0.85.
func TestDemoRunsTheMainJob(t *testing.T) {
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "demo", "--data", filepath.Join(t.TempDir(), "data"), "--listen", freeListen(t), "--http", "127.0.0.1:0", "--exit")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{"round 3/3", "task.finished.v1", "client.task_started.v1", "STEP", "Final accuracy"} {
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
}
