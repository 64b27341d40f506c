package experiments

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Figure is one figure a benchmark reported (b.ReportMetric, or ns/op
// when it reported nothing else), with the limit it must meet, if any.
type Figure struct {
	Package   string
	Benchmark string // without the -GOMAXPROCS suffix
	Unit      string
	Value     float64
	Limit     *Limit
}

// Limit is a target a figure must meet: at most (or at least) Value.
type Limit struct {
	Value   float64
	AtLeast bool
}

// Ratio is how far a figure is from its limit: at most 1 when it meets
// it (value/limit for an upper bound, limit/value for a lower one).
func (f Figure) Ratio() float64 {
	if f.Limit.AtLeast {
		return f.Limit.Value / f.Value
	}
	return f.Value / f.Limit.Value
}

// Limits are the targets the benchmarks must meet (issue 14), by
// benchmark and unit; every other figure is printed without one.
var Limits = map[string]Limit{
	"BenchmarkStartToClientSpawn p50-ms":         {Value: 3},
	"BenchmarkStartToClientSpawn p99-ms":         {Value: 15},
	"BenchmarkErrorToFailover p99-ms":            {Value: 10},
	"BenchmarkClientReports1000 cmds/s":          {Value: 30_000, AtLeast: true},
	"BenchmarkOfferFanOut/100000 all-offered-s":  {Value: 3},
	"BenchmarkOfferFanOut/100000 cloud-peak-MiB": {Value: 1024},
	// The same with identities on, against flmngr up (services/matcher).
	"BenchmarkFanOut/clients=100000 all-offered-s":  {Value: 3},
	"BenchmarkFanOut/clients=100000 cloud-peak-MiB": {Value: 1024},
	// On 10M events with FLMNGR_BENCH_EVENTS=10000000 (services/cloud);
	// 1M by default.
	"BenchmarkRestart restart-first-query-s": {Value: 5},
	"BenchmarkRestart snapshot-speedup-x":    {Value: 10, AtLeast: true},
}

var (
	benchLine  = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)
	gomaxprocs = regexp.MustCompile(`-\d+$`)
)

// ParseBench reads `go test -bench` output, copying every line to echo,
// and returns the figures it reports in order.
func ParseBench(r io.Reader, echo io.Writer) ([]Figure, error) {
	var out []Figure
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(echo, line)
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name := gomaxprocs.ReplaceAllString(m[1], "")
		fields := strings.Fields(m[3])
		var figs []Figure
		var nsop *Figure
		for i := 0; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				break
			}
			f := Figure{Package: pkg, Benchmark: name, Unit: fields[i+1], Value: v}
			switch f.Unit {
			case "ns/op":
				nsop = &f
			case "B/op", "allocs/op", "MB/s":
			default:
				figs = append(figs, f)
			}
		}
		if len(figs) == 0 && nsop != nil {
			figs = append(figs, *nsop)
		}
		for i := range figs {
			if l, ok := Limits[figs[i].Benchmark+" "+figs[i].Unit]; ok {
				figs[i].Limit = &l
			}
		}
		out = append(out, figs...)
	}
	return out, sc.Err()
}

// FormatFigures writes the summary table: figure, value, limit, ratio.
func FormatFigures(w io.Writer, figs []Figure) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\tlimit\tratio\t")
	met, missed := 0, 0
	for _, f := range figs {
		limit, ratio := "—", "—"
		if f.Limit != nil {
			op := "≤"
			if f.Limit.AtLeast {
				op = "≥"
			}
			limit = op + " " + number(f.Limit.Value)
			verdict := "met"
			if f.Ratio() > 1 {
				verdict = "NOT MET"
				missed++
			} else {
				met++
			}
			ratio = fmt.Sprintf("%.2f %s", f.Ratio(), verdict)
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t\n", strings.TrimPrefix(f.Benchmark, "Benchmark"), f.Unit, number(f.Value), limit, ratio)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d figures; %d limits met, %d not met\n", len(figs), met, missed)
}

// number prints a figure with four significant digits, and large ones
// whole.
func number(v float64) string {
	if v >= 1000 || v <= -1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
