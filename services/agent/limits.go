package agent

import (
	"fmt"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/taskd"
)

// limits are what a task's client process runs under here: the task's
// own limits capped by the site's ceiling. Limits this agent cannot read
// (from a newer cloud, say) are refused rather than ignored.
func (a *Agent) limits(o events.Offer) (taskd.Limits, error) {
	l, err := taskd.ParseLimits(o.Limits)
	if err != nil {
		return taskd.Limits{}, fmt.Errorf("task %s: %w", o.TaskID, err)
	}
	return l.Min(a.cfg.MaxLimits), nil
}

// limitLine is the log line that tells a task's logs which limit ended
// its client process.
func limitLine(ex taskd.Exit) taskd.Message {
	return taskd.Message{Kind: taskd.KindLog, Stream: "stderr", Text: "flmngr: the client process was killed: " + ex.Limit}
}

// errorText is why a client process that reported an error failed. A
// process under limits may report the error a limit caused (a failed
// allocation under RLIMIT_AS, a stop at its walltime): the agent then
// waits, at most the grace period, for it to exit, and gives the limit as
// the reason when taskd finds one ended it.
func (a *Agent) errorText(o events.Offer, proc *taskd.Process, text string) string {
	if proc.Enforcement() == "" {
		return text
	}
	timer := time.NewTimer(a.cfg.Grace)
	defer timer.Stop()
	select {
	case <-proc.Done():
	case <-timer.C:
		return text
	}
	ex := proc.Exit()
	if ex.Limit == "" {
		return text
	}
	a.cfg.Output(o.TaskID, o.Run, limitLine(ex))
	return ex.Limit
}
