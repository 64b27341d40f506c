package experiments_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/flmngr/flmngr/experiments"
)

const benchOutput = `goos: linux
goarch: amd64
pkg: github.com/flmngr/flmngr/services/agent
BenchmarkStartToClientSpawn
    bench_test.go:132: 100 runs:
BenchmarkStartToClientSpawn-2   	     100	  88226489 ns/op	        2.5 p50-ms	        79.10 p90-ms	       16 p99-ms
BenchmarkOfferFanOut/1000-2     	       1	1234 ns/op	         0.21 all-offered-s	       120.5 cloud-peak-MiB
PASS
pkg: github.com/flmngr/flmngr/events
BenchmarkDecode-2   	  500000	      2400 ns/op	     512 B/op	       9 allocs/op
pkg: github.com/flmngr/flmngr/services/api
BenchmarkClientReports1000-2 	       1	 9000 ns/op	  12000 cmds/s
ok  	github.com/flmngr/flmngr/services/api	3.1s
`

// TestBenchTable reads go test -bench output into figures with their
// limits and prints the table with each limit's verdict.
func TestBenchTable(t *testing.T) {
	var echo strings.Builder
	figs, err := experiments.ParseBench(strings.NewReader(benchOutput), &echo)
	if err != nil {
		t.Fatal(err)
	}
	if echo.String() != benchOutput {
		t.Fatalf("the output is not passed through:\n%s", echo.String())
	}
	var got []string
	for _, f := range figs {
		got = append(got, f.Benchmark+" "+f.Unit)
	}
	want := []string{
		"BenchmarkStartToClientSpawn p50-ms", "BenchmarkStartToClientSpawn p90-ms", "BenchmarkStartToClientSpawn p99-ms",
		"BenchmarkOfferFanOut/1000 all-offered-s", "BenchmarkOfferFanOut/1000 cloud-peak-MiB",
		"BenchmarkDecode ns/op", // no figure of its own: its time per op
		"BenchmarkClientReports1000 cmds/s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("figures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if figs[0].Package != "github.com/flmngr/flmngr/services/agent" || figs[6].Package != "github.com/flmngr/flmngr/services/api" {
		t.Fatalf("packages: %q, %q", figs[0].Package, figs[6].Package)
	}
	var table strings.Builder
	experiments.FormatFigures(&table, figs)
	var rows []string // each line with single spaces
	for line := range strings.Lines(table.String()) {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	for _, line := range []string{
		"figure value limit ratio",
		"StartToClientSpawn p50-ms 2.5 ≤ 3 0.83 met",
		"StartToClientSpawn p99-ms 16 ≤ 15 1.07 NOT MET",
		"StartToClientSpawn p90-ms 79.1 — —",
		"ClientReports1000 cmds/s 12000 ≥ 30000 2.50 NOT MET",
		"7 figures; 1 limits met, 2 not met",
	} {
		if !slices.Contains(rows, line) {
			t.Errorf("no line %q in\n%s", line, table.String())
		}
	}
}
