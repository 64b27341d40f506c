package flowerapp_test

import (
	"os"
	"strings"
	"testing"

	"github.com/flmngr/flmngr/tasks/flowerapp"
)

// TestRoundsFromObservedLogs reads logs real Flower 1.23.0 printed
// (`flwr log N APP FED --show`): the sample app of this package and
// Flower's NumPy template, whose evaluate metric is a list.
func TestRoundsFromObservedLogs(t *testing.T) {
	cases := []struct {
		file   string
		key    string
		round3 float64
		raw    string
	}{
		{"testdata/flwr-log-show.txt", "eval_mse", 0.010472687508997089, ""},
		{"testdata/flwr-log-show-sample-app.txt", "train_random_metric", 0.9418344353143453, "eval_random_metric"},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.file, "testdata/"), func(t *testing.T) {
			b, err := os.ReadFile(c.file)
			if err != nil {
				t.Fatal(err)
			}
			var p flowerapp.Rounds
			var got []flowerapp.Round
			for _, l := range strings.Split(string(b), "\n") {
				if r, ok := p.Feed(l); ok {
					got = append(got, r)
				}
			}
			if len(got) != 3 {
				t.Fatalf("%d rounds, want 3: %+v", len(got), got)
			}
			for i, r := range got {
				if r.Number != i+1 || r.Metrics["train_results"] != 2 || r.Metrics["eval_results"] != 2 || r.Metrics["train_failures"] != 0 {
					t.Errorf("round %d: %+v", i+1, r)
				}
			}
			if v := got[2].Metrics[c.key]; v != c.round3 {
				t.Errorf("round 3 %s = %v, want %v", c.key, v, c.round3)
			}
			if c.raw != "" && !strings.HasPrefix(got[0].Raw[c.raw], "[0.43") {
				t.Errorf("round 1 raw %s = %q", c.raw, got[0].Raw[c.raw])
			}
			if _, ok := p.Flush(); ok {
				t.Error("a round is left after the strategy finished")
			}
		})
	}
}
