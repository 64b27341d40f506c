package experiments

import (
	"math"
	"slices"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// Summary is one step over every run where it was found.
type Summary struct {
	Step string  `json:"step"`
	N    int     `json:"n"`
	Mean float64 `json:"mean_s"`
	// CI95 is the half-width of the two-sided 95% confidence interval of
	// the mean (Student t with n-1 degrees of freedom).
	CI95   float64 `json:"ci95_s"`
	Min    float64 `json:"min_s"`
	Median float64 `json:"median_s"`
	Max    float64 `json:"max_s"`
}

// Summarize computes mean ± 95% CI, min, median and max of each step.
func Summarize(kind string, runs []Run) []Summary {
	steps := Steps(kind)
	out := make([]Summary, len(steps))
	for i, name := range steps {
		var xs []float64
		for _, r := range runs {
			if i < len(r.Found) && r.Found[i] {
				xs = append(xs, r.Timings[i].Seconds())
			}
		}
		out[i] = summarize(name, xs)
	}
	return out
}

func summarize(name string, xs []float64) Summary {
	s := Summary{Step: name, N: len(xs)}
	if len(xs) == 0 {
		s.Mean, s.CI95, s.Min, s.Median, s.Max = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
		return s
	}
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	s.Mean = stat.Mean(xs, nil)
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	if n := len(sorted); n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	if len(xs) > 1 {
		t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(xs) - 1)}.Quantile(0.975)
		s.CI95 = t * stat.StdDev(xs, nil) / math.Sqrt(float64(len(xs)))
	}
	return s
}

// MedianRun is the run whose total span is the median, for charts.
func MedianRun(runs []Run) (Run, bool) {
	if len(runs) == 0 {
		return Run{}, false
	}
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b Run) int {
		return int(a.End.Sub(a.Start) - b.End.Sub(b.Start))
	})
	return sorted[len(sorted)/2], true
}
