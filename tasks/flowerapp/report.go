package flowerapp

import (
	"encoding/json"
	"io"
	"strconv"
	"sync"
)

// Reporter writes report protocol lines; it is safe for concurrent use.
type Reporter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewReporter reports on w (the process's stdout).
func NewReporter(w io.Writer) *Reporter { return &Reporter{w: w} }

func (r *Reporter) line(v map[string]any) {
	b, _ := json.Marshal(v)
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _ = r.w.Write(append(b, '\n'))
}

// Step reports a named step with its detail.
func (r *Reporter) Step(step, detail string) {
	r.line(map[string]any{"type": "step", "step": step, "detail": detail})
}

// Info reports "Started" or "Finished".
func (r *Reporter) Info(text string) { r.line(map[string]any{"type": "info", "info": text}) }

// Error reports the error that ends the task.
func (r *Reporter) Error(text string) { r.line(map[string]any{"type": "error", "exception": text}) }

// Round reports a round's metrics: numbers as numbers, the rest as text.
func (r *Reporter) Round(rd Round) {
	v := map[string]any{"type": "model", "round": strconv.Itoa(rd.Number)}
	for k, x := range rd.Metrics {
		v[k] = x
	}
	for k, x := range rd.Raw {
		v[k] = x
	}
	r.line(v)
}
