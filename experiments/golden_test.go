package experiments_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/experiments"
	"github.com/flmngr/flmngr/projections"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestGoldenTimelines replays recorded timelines of both experiments
// through the timing projection and compares every figure with the golden
// files; -update rewrites them.
func TestGoldenTimelines(t *testing.T) {
	for _, kind := range []string{experiments.Exp1, experiments.Exp2} {
		t.Run(kind, func(t *testing.T) {
			evs, err := experiments.ReadTimeline(filepath.Join("testdata", kind+".ndjson"))
			if err != nil {
				t.Fatal(err)
			}
			runs := experiments.Runs(kind, evs)
			if len(runs) != 2 {
				t.Fatalf("%d runs in the fixture, want 2", len(runs))
			}
			for _, r := range runs {
				for i, ok := range r.Found {
					if !ok {
						t.Fatalf("%s: step %q not found", r.Name, experiments.Steps(kind)[i])
					}
				}
			}
			var got bytes.Buffer
			experiments.FormatRaw(&got, kind, runs)
			experiments.FormatSummary(&got, kind, experiments.Summarize(kind, runs))
			orig, _ := json.MarshalIndent(experiments.Original(kind, runs[0]), "", " ")
			got.Write(orig)
			got.WriteByte('\n')
			golden := filepath.Join("testdata", kind+".golden")
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("figures differ from %s (rerun with -update if the change is intended):\n%s", golden, got.String())
			}
		})
	}
}

// TestFixturesReplayThroughTheViews folds the fixtures into the task and
// client views: what the experiments did is what the views say.
func TestFixturesReplayThroughTheViews(t *testing.T) {
	evs, err := experiments.ReadTimeline(filepath.Join("testdata", "exp2.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	tasks := map[string]*projections.TaskView{}
	clients := map[string]*projections.ClientView{}
	for _, e := range evs {
		switch e.Aggregate.Kind {
		case events.KindTask:
			tasks[e.Aggregate.ID] = projections.ApplyTask(tasks[e.Aggregate.ID], e)
		case events.KindClient:
			clients[e.Aggregate.ID] = projections.ApplyClient(clients[e.Aggregate.ID], e)
		}
		if entry := projections.Entry(e); entry.Seq != e.Seq || entry.Type != e.Type {
			t.Fatalf("timeline entry of %d: %+v", e.Seq, entry)
		}
	}
	for _, id := range []string{"exp2-E", "exp2-C"} {
		if v := tasks[id]; v == nil || v.Status != commands.StatusStopped || v.Runs != 2 {
			t.Fatalf("task %s: %+v", id, v)
		}
	}
	c := clients["exp2-client"]
	if c == nil || len(c.Quarantined) != 2 || len(c.Running) != 0 {
		t.Fatalf("client: %+v", c)
	}
	for _, q := range c.Quarantined {
		if q.TaskID != "exp2-E" {
			t.Fatalf("quarantined %+v, want only E's runs", q)
		}
	}
}
