package experiments

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flmngr/flmngr/events"
)

// Kinds of experiment.
const (
	Exp1 = "exp1"
	Exp2 = "exp2"
)

// Steps of each experiment, named as the original's analysis printed them.
var (
	Exp1Steps = []string{
		"Time for registering a task",
		"Time for starting a task at cloud",
		"Time for updating client info",
		"Time for requesting a task",
		"Time for downloading a task",
		"Time for starting a task at client",
		"Time for finishing a task at client",
	}
	Exp2Steps = []string{
		"Time for starting a task",
		"Time for a bug to happen",
		"Time for handling error",
		"Time for requesting a new task",
		"Time for downloading a new task",
		"Time for starting the new task",
		"Time for failing over to the next task's process",
	}
)

// Steps returns the step names of an experiment.
func Steps(kind string) []string {
	if kind == Exp2 {
		return Exp2Steps
	}
	return Exp1Steps
}

// Naming: experiment 1's run n uses task exp1-rNN and clients exp1-rNN-c1
// (measured) and exp1-rNN-c2; experiment 2 uses tasks exp2-E and exp2-C
// and client exp2-client, one run of each task per experiment run.
const (
	exp1Prefix = "exp1-r"
	exp2E      = "exp2-E"
	exp2C      = "exp2-C"
	exp2Client = "exp2-client"
)

func exp1Task(n int) string { return fmt.Sprintf("%s%02d", exp1Prefix, n) }

// Run is one run's timings, in step order; NaN marks a step whose events
// were not found (the original printed "Not found").
type Run struct {
	Name    string
	Timings []time.Duration
	Found   []bool
	// Span is the run's first and last event, and Marks the start and
	// end of each step, for charts.
	Start, End time.Time
	Marks      [][2]time.Time
}

// index collects what the timings need from a log.
type index struct {
	byType map[string][]events.Envelope
	bySeq  map[uint64]events.Envelope
}

func newIndex(evs []events.Envelope) *index {
	ix := &index{byType: map[string][]events.Envelope{}, bySeq: make(map[uint64]events.Envelope, len(evs))}
	for _, e := range evs {
		ix.byType[e.Type] = append(ix.byType[e.Type], e)
		ix.bySeq[e.Seq] = e
	}
	return ix
}

// find returns the first event of a type that satisfies match.
func (ix *index) find(typ string, match func(events.Envelope) bool) (events.Envelope, bool) {
	for _, e := range ix.byType[typ] {
		if match(e) {
			return e, true
		}
	}
	return events.Envelope{}, false
}

func onAggregate(id string) func(events.Envelope) bool {
	return func(e events.Envelope) bool { return e.Aggregate.ID == id }
}

// clientTask matches a client event about a task run.
func clientTask(client, task, run string) func(events.Envelope) bool {
	return func(e events.Envelope) bool {
		if e.Aggregate.ID != client {
			return false
		}
		t, r, ok := events.TaskRunOf(e.Event)
		return ok && t == task && (run == "" || r == run)
	}
}

// mark is a point of a step: an event's recorded time, the time its
// command was sent, or a time the event's payload implies.
type mark struct {
	at time.Time
	ok bool
}

func recorded(e events.Envelope, ok bool) mark { return mark{e.Time, ok} }

func requested(e events.Envelope, ok bool) mark {
	if !ok || e.RequestedAt == nil {
		return mark{}
	}
	return mark{*e.RequestedAt, true}
}

// sent is when the component that reported an event sent it (its
// requested time), or, for logs without one, when it was recorded.
func sent(e events.Envelope, ok bool) mark {
	if m := requested(e, ok); m.ok {
		return m
	}
	return recorded(e, ok)
}

// downloadBegan is when a download began, on the agent's clock: when the
// agent sent its end minus the duration it measured.
func downloadBegan(e events.Envelope, ok bool) mark {
	if !ok {
		return mark{}
	}
	end := sent(e, ok)
	return mark{end.at.Add(-e.Event.(*events.ClientTaskDownloaded).Duration), true}
}

func newRun(name string, steps [][2]mark) Run {
	r := Run{Name: name, Timings: make([]time.Duration, len(steps)), Found: make([]bool, len(steps)), Marks: make([][2]time.Time, len(steps))}
	for i, s := range steps {
		if s[0].ok && s[1].ok {
			r.Timings[i], r.Found[i], r.Marks[i] = s[1].at.Sub(s[0].at), true, [2]time.Time{s[0].at, s[1].at}
			if r.Start.IsZero() || s[0].at.Before(r.Start) {
				r.Start = s[0].at
			}
			if s[1].at.After(r.End) {
				r.End = s[1].at
			}
		}
	}
	return r
}

// Exp1Runs measures every run of experiment 1 found in a log.
func Exp1Runs(evs []events.Envelope) []Run {
	ix := newIndex(evs)
	var runs []Run
	for _, created := range ix.byType[events.TaskCreatedV1] {
		task := created.Aggregate.ID
		if !strings.HasPrefix(task, exp1Prefix) {
			continue
		}
		client := task + "-c1"
		start, okStart := ix.find(events.TaskStartRequestedV1, onAggregate(task))
		server, okServer := ix.find(events.TaskServerStartedV1, onAggregate(task))
		reg, okReg := ix.find(events.ClientRegisteredV1, onAggregate(client))
		offer, okOffer := ix.find(events.ClientOffersChangedV1, func(e events.Envelope) bool {
			if e.Aggregate.ID != client {
				return false
			}
			return slices.ContainsFunc(e.Event.(*events.ClientOffersChanged).Offers, func(o events.Offer) bool { return o.TaskID == task })
		})
		dl, okDl := ix.find(events.ClientTaskDownloadedV1, clientTask(client, task, ""))
		running, okRunning := ix.find(events.ClientTaskRunningV1, clientTask(client, task, ""))
		fin, okFin := ix.find(events.ClientTaskFinishedV1, clientTask(client, task, ""))
		exit, okExit := ix.find(events.ClientTaskExitedV1, clientTask(client, task, ""))
		runs = append(runs, newRun(task, [][2]mark{
			{requested(created, true), recorded(created, true)},
			{requested(start, okStart), recorded(server, okServer)},
			{requested(reg, okReg), recorded(reg, okReg)},
			{recorded(reg, okReg), recorded(offer, okOffer)},
			{downloadBegan(dl, okDl), sent(dl, okDl)},
			{recorded(dl, okDl), recorded(running, okRunning)},
			{recorded(fin, okFin), recorded(exit, okExit)},
		}))
	}
	return runs
}

// Exp2Runs measures every run of experiment 2 found in a log.
func Exp2Runs(evs []events.Envelope) []Run {
	ix := newIndex(evs)
	var runs []Run
	for _, start := range ix.byType[events.TaskStartRequestedV1] {
		if start.Aggregate.ID != exp2E {
			continue
		}
		run := start.Event.(*events.TaskStartRequested).Run
		c := exp2Client
		eDl, okEDl := ix.find(events.ClientTaskDownloadedV1, clientTask(c, exp2E, run))
		eRun, okERun := ix.find(events.ClientTaskRunningV1, clientTask(c, exp2E, run))
		eErr, okEErr := ix.find(events.ClientTaskErroredV1, clientTask(c, exp2E, run))
		eQ, okEQ := ix.find(events.ClientTaskQuarantinedV1, clientTask(c, exp2E, run))
		cDl, okCDl := ix.find(events.ClientTaskDownloadedV1, clientTask(c, exp2C, run))
		cStart, okCStart := ix.find(events.ClientTaskStartedV1, clientTask(c, exp2C, run))
		cRun, okCRun := ix.find(events.ClientTaskRunningV1, clientTask(c, exp2C, run))
		runs = append(runs, newRun(fmt.Sprintf("run %s", run), [][2]mark{
			{recorded(eDl, okEDl), recorded(eRun, okERun)},
			{recorded(eRun, okERun), recorded(eErr, okEErr)},
			{recorded(eErr, okEErr), recorded(eQ, okEQ)},
			// Both ends on the agent's clock: it quarantines E and turns
			// to C at once, before the cloud has recorded the quarantine.
			{sent(eQ, okEQ), downloadBegan(cDl, okCDl)},
			{downloadBegan(cDl, okCDl), sent(cDl, okCDl)},
			{recorded(cDl, okCDl), recorded(cRun, okCRun)},
			{recorded(eErr, okEErr), recorded(cStart, okCStart)},
		}))
	}
	return runs
}

// Runs measures the runs of one experiment found in a log.
func Runs(kind string, evs []events.Envelope) []Run {
	if kind == Exp2 {
		return Exp2Runs(evs)
	}
	return Exp1Runs(evs)
}
