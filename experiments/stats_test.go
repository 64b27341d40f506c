package experiments

import (
	"math"
	"testing"
)

func TestStudentTInterval(t *testing.T) {
	s := summarize("x", []float64{1, 2, 3, 4, 5})
	// mean 3, sd sqrt(2.5), t(0.975; 4 df) = 2.7764: half-width 1.9632.
	if s.Mean != 3 || math.Abs(s.CI95-1.9632) > 1e-3 || s.Median != 3 || s.Min != 1 || s.Max != 5 {
		t.Fatalf("summary %+v", s)
	}
	if s := summarize("x", []float64{2, 4}); s.Median != 3 {
		t.Fatalf("median of an even count: %+v", s)
	}
	if s := summarize("x", nil); s.N != 0 || !math.IsNaN(s.Mean) {
		t.Fatalf("empty summary %+v", s)
	}
}
