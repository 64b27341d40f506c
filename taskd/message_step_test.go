package taskd_test

import (
	"testing"

	"github.com/flmngr/flmngr/taskd"
)

// TestParseStep reads the report protocol's step line: a named step and
// its detail; a step without a name is a log line.
func TestParseStep(t *testing.T) {
	m := taskd.Parse("stdout", []byte(`{"type":"step","step":"run_submitted","detail":"run 16905213269671826432"}`))
	if m.Kind != taskd.KindStep || m.Step != "run_submitted" || m.Text != "run 16905213269671826432" {
		t.Fatalf("got %+v", m)
	}
	for _, line := range []string{`{"type":"step","detail":"x"}`, `{"type":"step","step":""}`} {
		if m := taskd.Parse("stdout", []byte(line)); m.Kind != taskd.KindLog {
			t.Errorf("Parse(%s) = %+v, want a log line", line, m)
		}
	}
}
