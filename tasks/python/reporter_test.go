package python_test

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/flmngr/flmngr/taskd"
)

// TestReporterSpeaksTheProtocol runs the reporter with python3 and parses
// its output as the supervisors do.
func TestReporterSpeaksTheProtocol(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the Python reporter cannot be tested here")
	}
	script := `
from flmngr_reporter import TaskReporter
r = TaskReporter()
r.send_print("loading")
r.send_stats(3, 0.91, loss=0.2)
r.trigger("trigger_example", 0.91)
r.send_error(Exception())
r.send_info("Finished")
`
	cmd := exec.Command(py, "-c", script)
	cmd.Dir = "."
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var got []taskd.Message
	for _, line := range bytes.Split(bytes.TrimSpace(out), []byte("\n")) {
		got = append(got, taskd.Parse("stdout", line))
	}
	want := []taskd.Kind{taskd.KindInfo, taskd.KindPrint, taskd.KindModel, taskd.KindTrigger, taskd.KindError, taskd.KindInfo}
	if len(got) != len(want) {
		t.Fatalf("%d messages: %s", len(got), out)
	}
	for i, m := range got {
		if m.Kind != want[i] {
			t.Fatalf("message %d is %s, want %s: %s", i, m.Kind, want[i], strings.Split(string(out), "\n")[i])
		}
	}
	if got[0].Text != "Started" || !got[5].IsFinished() || got[2].Round != 3 || got[2].Metrics["accuracy"] != 0.91 || got[2].Metrics["loss"] != 0.2 || got[3].Arguments != "0.91" {
		t.Fatalf("messages: %+v", got)
	}
}
