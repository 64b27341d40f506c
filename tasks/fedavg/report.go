package fedavg

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
)

// Reporter writes report-protocol lines.
type Reporter struct {
	mu  sync.Mutex
	out io.Writer
}

// NewReporter writes to out and reports "Started".
func NewReporter(out io.Writer) *Reporter {
	r := &Reporter{out: out}
	r.send(map[string]string{"type": "info", "info": "Started"})
	return r
}

func (r *Reporter) send(m map[string]string) {
	b, _ := json.Marshal(m)
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(r.out, "%s\n", b)
}

// Info reports an informative message; "Finished" ends the task.
func (r *Reporter) Info(s string) { r.send(map[string]string{"type": "info", "info": s}) }

// Print reports a line worth showing.
func (r *Reporter) Print(format string, args ...any) {
	r.send(map[string]string{"type": "print", "message": fmt.Sprintf(format, args...)})
}

// Error reports the task's failure.
func (r *Reporter) Error(err error) {
	r.send(map[string]string{"type": "error", "exception": err.Error()})
}

// Round reports a completed round with its metrics.
func (r *Reporter) Round(round int, metrics map[string]float64) {
	m := map[string]string{"type": "model", "round": strconv.Itoa(round)}
	for k, v := range metrics {
		m[k] = strconv.FormatFloat(v, 'f', 4, 64)
	}
	r.send(m)
}

// Trigger asks the cloud to run one of the task's triggers.
func (r *Reporter) Trigger(name, args string) {
	r.send(map[string]string{"type": "trigger", "trigger_name": name, "trigger_arguments": args})
}
