package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flmngr/flmngr/services/testkit"
)

// TestExperimentReportReproducesTheFigures runs both experiments twice
// with the binary, then recomputes their figures offline from the
// recorded timeline: they must be the ones the runs printed, every hop on
// the way to a client process included.
func TestExperimentReportReproducesTheFigures(t *testing.T) {
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"exp1", "exp2"} {
		t.Run(kind, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), kind)
			run, err := exec.Command(bin, "experiment", kind, "--runs", "2", "--out", out).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", kind, err, run)
			}
			for _, f := range []string{"timeline.ndjson", "events.json", "runs/01/events.json", "raw_times.txt", "summary.txt", "summary.json", "timeline.png", "hops.txt"} {
				if _, err := os.Stat(filepath.Join(out, f)); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
			}
			summary, _ := os.ReadFile(filepath.Join(out, "summary.txt"))
			raw, _ := os.ReadFile(filepath.Join(out, "raw_times.txt"))
			if strings.Contains(string(raw), "Not found") {
				t.Fatalf("a step was not found:\n%s", raw)
			}
			report, err := exec.Command(bin, "experiment", "report", "--from", out).CombinedOutput()
			if err != nil {
				t.Fatalf("report: %v\n%s", err, report)
			}
			hops, _ := os.ReadFile(filepath.Join(out, "hops.txt"))
			if strings.Contains(string(hops), "—") || !strings.Contains(string(run), string(hops)) {
				t.Fatalf("a hop was not found, or the run did not print them:\n%s", hops)
			}
			if !strings.Contains(string(report), string(summary)) || !strings.Contains(string(report), string(raw)) || !strings.Contains(string(report), string(hops)) {
				t.Fatalf("the report differs from the run's figures:\n%s\n--- run:\n%s%s%s", report, raw, summary, hops)
			}
		})
	}
}
