package launch

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestArgvWithCommandAndPlaceholders(t *testing.T) {
	got, err := Argv(Spec{
		Command:   []string{"{flmngr}", "fl", "server", "--listen", "{host}:{port}", "--task", "{task}", "{unknown}"},
		Arguments: "--rounds  3",
		WorkDir:   "/w", TaskDir: "/w/tasks/task_x",
		Vars: map[string]string{"host": "0.0.0.0", "port": "8080", "task": "x"},
	})
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	want := []string{exe, "fl", "server", "--listen", "0.0.0.0:8080", "--task", "x", "{unknown}", "--rounds", "3"}
	if !slices.Equal(got, want) {
		t.Fatalf("argv %q, want %q", got, want)
	}
}

func TestDefaultArgvIsTheOriginalConvention(t *testing.T) {
	py, err := Python()
	if err != nil {
		t.Skipf("no python3 here: %v", err)
	}
	got, err := Argv(Spec{Entry: "client.py", WorkDir: "/w", Arguments: "test-error"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{py, "client.py", "/w", "test-error"}) {
		t.Fatalf("argv %q", got)
	}
	if !strings.HasPrefix(py, "/") {
		t.Fatalf("python path %q is not absolute", py)
	}
}

func TestEnvIsUnbufferedAndNamesTheTask(t *testing.T) {
	env := Env(map[string]string{"task": "4fe5", "run": "2", "client": "c1"})
	for _, want := range []string{"PYTHONUNBUFFERED=1", "FLMNGR_TASK=4fe5", "FLMNGR_RUN=2", "FLMNGR_CLIENT=c1"} {
		if !slices.Contains(env, want) {
			t.Errorf("env lacks %s", want)
		}
	}
}
