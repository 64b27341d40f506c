package experiments

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/flmngr/flmngr/events"
)

// Files written into an experiment's output directory.
const (
	TimelineFile = "timeline.ndjson" // the native timeline: every envelope, with its sequence
	EventsFile   = "events.json"     // every run in the original's events.json shape
	RawFile      = "raw_times.txt"   // the original's raw-times report, one block per run
	SummaryFile  = "summary.txt"     // mean ± 95% CI per step
	SummaryJSON  = "summary.json"
	ChartFile    = "timeline.png" // the steps of the median run
	HopsFile     = "hops.txt"     // p50, p90, p99 of every hop of the path to a spawn
)

// wireEvent is an envelope with its stream sequence, one per line of the
// native timeline.
type wireEvent struct {
	Seq uint64 `json:"seq"`
	events.Envelope
}

// WriteTimeline writes envelopes as NDJSON.
func WriteTimeline(path string, evs []events.Envelope) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, e := range evs {
		if err := enc.Encode(wireEvent{Seq: e.Seq, Envelope: e}); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// ReadTimeline reads a native timeline, decoding every event with the
// event codec (an unknown event type is an error).
func ReadTimeline(path string) ([]events.Envelope, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []events.Envelope
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for line := 1; sc.Scan(); line++ {
		var w struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &w); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		e, err := events.Decode(sc.Bytes(), w.Seq)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// WriteResults writes every figure of one experiment into dir from its
// timeline: events.json (all runs and one per run), the raw times, the
// summary and the chart.
func WriteResults(dir, kind string, evs []events.Envelope) ([]Run, []Summary, error) {
	runs := Runs(kind, evs)
	if len(runs) == 0 {
		return nil, nil, errors.New("the timeline holds no run of " + kind)
	}
	sums := Summarize(kind, runs)
	var all []OriginalEvent
	for i, r := range runs {
		orig := Original(kind, r)
		all = append(all, orig...)
		if err := writeJSON(filepath.Join(dir, "runs", fmt.Sprintf("%02d", i+1), EventsFile), orig); err != nil {
			return nil, nil, err
		}
	}
	sortOriginal(all)
	if err := writeJSON(filepath.Join(dir, EventsFile), all); err != nil {
		return nil, nil, err
	}
	if err := writeWith(filepath.Join(dir, RawFile), func(w io.Writer) { FormatRaw(w, kind, runs) }); err != nil {
		return nil, nil, err
	}
	if err := writeWith(filepath.Join(dir, SummaryFile), func(w io.Writer) { FormatSummary(w, kind, sums) }); err != nil {
		return nil, nil, err
	}
	if err := writeJSON(filepath.Join(dir, SummaryJSON), jsonSummaries(sums)); err != nil {
		return nil, nil, err
	}
	path, hops := HopRuns(kind, evs)
	if err := writeWith(filepath.Join(dir, HopsFile), func(w io.Writer) { FormatHops(w, path, HopPercentiles(path, hops)) }); err != nil {
		return nil, nil, err
	}
	if r, ok := MedianRun(runs); ok {
		if err := Chart(filepath.Join(dir, ChartFile), kind, r); err != nil {
			return nil, nil, err
		}
	}
	return runs, sums, nil
}

func writeJSON(path string, v any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func writeWith(path string, fn func(io.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	fn(f)
	return f.Close()
}

// jsonSummaries replaces NaN (JSON has none) by omitting the figures.
func jsonSummaries(sums []Summary) []map[string]any {
	out := make([]map[string]any, len(sums))
	for i, s := range sums {
		m := map[string]any{"step": s.Step, "n": s.N}
		if s.N > 0 {
			m["mean_s"], m["ci95_s"], m["min_s"], m["median_s"], m["max_s"] = s.Mean, s.CI95, s.Min, s.Median, s.Max
		}
		out[i] = m
	}
	return out
}

// FormatRaw writes the original's raw-times report: for every run a
// results block with one "N) <step> = X seconds" line per step.
func FormatRaw(w io.Writer, kind string, runs []Run) {
	steps := Steps(kind)
	for _, r := range runs {
		fmt.Fprintf(w, "---- RESULTS ---- (%s)\n", r.Name)
		for i, name := range steps {
			if r.Found[i] {
				fmt.Fprintf(w, "%d) %s = %.6f seconds\n", i+1, name, r.Timings[i].Seconds())
			} else {
				fmt.Fprintf(w, "%d) %s = Not found\n", i+1, name)
			}
		}
	}
}

// FormatSummary writes mean ± 95% CI, min, median and max per step.
func FormatSummary(w io.Writer, kind string, sums []Summary) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s step\tn\tmean\t±95%% CI\tmin\tmedian\tmax\t\n", kind)
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", strings.TrimPrefix(s.Step, "Time for "), s.N, human(s.Mean), human(s.CI95), human(s.Min), human(s.Median), human(s.Max))
	}
	tw.Flush()
}

// human prints seconds with a unit that keeps three significant digits.
func human(s float64) string {
	switch {
	case math.IsNaN(s):
		return "—"
	case s < 1e-3:
		return fmt.Sprintf("%.0f µs", s*1e6)
	case s < 1:
		return fmt.Sprintf("%.2f ms", s*1e3)
	}
	return fmt.Sprintf("%.3f s", s)
}
