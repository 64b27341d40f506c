package experiments

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flmngr/flmngr/events"
)

// Paths whose every hop is measured.
const (
	PathSpawn    = "spawn"    // what caused an offer → the client process's first line
	PathFailover = "failover" // a client's error → the next task's first line
)

// The hops of each path. Every time on them is recorded by a component
// on this machine: when a component sent a command (the event's
// requested time: the agent when it queued a report, the matcher when it
// sent the offers), when the log recorded it, and when the agent began a
// download (it sent the download's end and its duration).
var (
	SpawnHops = []string{
		"command → log",            // the cause: sent → recorded
		"log → matcher",            // the cause recorded → the matcher sent the offers
		"matcher → offer recorded", // offers: sent → recorded
		"offer → agent",            // offers recorded → the agent began the download
		"download + verify",        // the download's duration, every byte checked
		"verified → spawned",       // downloaded sent → started sent (process spawned)
		"spawned → first line",     // started sent → running sent ("Started" read)
		"report → log",             // started: sent → recorded
		"total: cause recorded → spawn recorded",
	}
	FailoverHops = []string{
		"error line → report",         // errored sent → quarantined sent
		"quarantined → next download", // quarantined sent → next task's download began
		"download + verify",           // the next task's download
		"verified → spawned",          // downloaded sent → started sent
		"spawned → first line",        // started sent → running sent
		"report → log (error)",        // errored: sent → recorded
		"report → log (spawn)",        // started: sent → recorded
		"total: error recorded → spawn recorded",
	}
)

// HopNames returns the hops of a path.
func HopNames(path string) []string {
	if path == PathFailover {
		return FailoverHops
	}
	return SpawnHops
}

// causeSeq reads the stream sequence of the event an offers event names
// as its cause ("type aggregate@seq").
func causeSeq(cause string) (uint64, bool) {
	i := strings.LastIndexByte(cause, '@')
	if i < 0 {
		return 0, false
	}
	seq, err := strconv.ParseUint(cause[i+1:], 10, 64)
	return seq, err == nil
}

// SpawnPath measures every hop from what caused a client to be offered a
// task run (a start, a registration) to the first line of the client
// process that run spawned. It returns false when an event of the path is
// missing.
func SpawnPath(evs []events.Envelope, client, task, run string) (Run, bool) {
	return newIndex(evs).spawnPath(client, task, run)
}

func (ix *index) spawnPath(client, task, run string) (Run, bool) {
	dl, okDl := ix.find(events.ClientTaskDownloadedV1, clientTask(client, task, run))
	started, okStarted := ix.find(events.ClientTaskStartedV1, clientTask(client, task, run))
	running, okRunning := ix.find(events.ClientTaskRunningV1, clientTask(client, task, run))
	if !okDl || !okStarted {
		return Run{}, false
	}
	// The offer the run acted on: the first to offer it.
	offer, okOffer := ix.find(events.ClientOffersChangedV1, func(e events.Envelope) bool {
		return e.Aggregate.ID == client && e.Seq < dl.Seq && slices.ContainsFunc(e.Event.(*events.ClientOffersChanged).Offers, func(o events.Offer) bool {
			return o.TaskID == task && o.Run == run
		})
	})
	var cause events.Envelope
	okCause := false
	if okOffer {
		if seq, ok := causeSeq(offer.Event.(*events.ClientOffersChanged).Cause); ok {
			cause, okCause = ix.bySeq[seq]
		}
	}
	r := newRun(fmt.Sprintf("%s %s run %s", client, task, run), [][2]mark{
		{requested(cause, okCause), recorded(cause, okCause)},
		{recorded(cause, okCause), requested(offer, okOffer)},
		{requested(offer, okOffer), recorded(offer, okOffer)},
		{recorded(offer, okOffer), downloadBegan(dl, true)},
		{downloadBegan(dl, true), sent(dl, true)},
		{sent(dl, true), sent(started, true)},
		{sent(started, true), sent(running, okRunning)},
		{sent(started, true), recorded(started, true)},
		{recorded(cause, okCause), recorded(started, true)},
	})
	return r, true
}

// FailoverPath measures every hop from a client's errored report of one
// task run to the first line of the next task's process on that client.
func FailoverPath(evs []events.Envelope, client, task, run, next, nextRun string) (Run, bool) {
	return newIndex(evs).failoverPath(client, task, run, next, nextRun)
}

func (ix *index) failoverPath(client, task, run, next, nextRun string) (Run, bool) {
	errd, okErr := ix.find(events.ClientTaskErroredV1, clientTask(client, task, run))
	q, okQ := ix.find(events.ClientTaskQuarantinedV1, clientTask(client, task, run))
	after := func(typ string) (events.Envelope, bool) {
		m := clientTask(client, next, nextRun)
		return ix.find(typ, func(e events.Envelope) bool { return e.Seq > errd.Seq && m(e) })
	}
	if !okErr {
		return Run{}, false
	}
	dl, okDl := after(events.ClientTaskDownloadedV1)
	started, okStarted := after(events.ClientTaskStartedV1)
	running, okRunning := after(events.ClientTaskRunningV1)
	if !okStarted {
		return Run{}, false
	}
	r := newRun(fmt.Sprintf("%s %s run %s → %s", client, task, run, next), [][2]mark{
		{sent(errd, true), sent(q, okQ)},
		{sent(q, okQ), downloadBegan(dl, okDl)},
		{downloadBegan(dl, okDl), sent(dl, okDl)},
		{sent(dl, okDl), sent(started, true)},
		{sent(started, true), sent(running, okRunning)},
		{sent(errd, true), recorded(errd, true)},
		{sent(started, true), recorded(started, true)},
		{recorded(errd, true), recorded(started, true)},
	})
	return r, true
}

// HopRuns measures the hops of an experiment's runs: experiment 1's spawn
// path for its measured client, experiment 2's failover from E to C.
func HopRuns(kind string, evs []events.Envelope) (string, []Run) {
	var out []Run
	ix := newIndex(evs)
	if kind == Exp2 {
		for _, start := range ix.byType[events.TaskStartRequestedV1] {
			if start.Aggregate.ID != exp2E {
				continue
			}
			run := start.Event.(*events.TaskStartRequested).Run
			if r, ok := ix.failoverPath(exp2Client, exp2E, run, exp2C, run); ok {
				out = append(out, r)
			}
		}
		return PathFailover, out
	}
	for _, created := range ix.byType[events.TaskCreatedV1] {
		task := created.Aggregate.ID
		if !strings.HasPrefix(task, exp1Prefix) {
			continue
		}
		dl, ok := ix.find(events.ClientTaskDownloadedV1, clientTask(task+"-c1", task, ""))
		if !ok {
			continue
		}
		_, run, _ := events.TaskRunOf(dl.Event)
		if r, ok := ix.spawnPath(task+"-c1", task, run); ok {
			out = append(out, r)
		}
	}
	return PathSpawn, out
}

// Percentiles are a hop's figures over the runs where it was found.
type Percentiles struct {
	Hop           string
	N             int
	P50, P90, P99 time.Duration
	Max           time.Duration
}

// Quantile returns the q-quantile of sorted durations (nearest rank).
func Quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// HopPercentiles computes p50, p90, p99 and max of each hop of a path.
func HopPercentiles(path string, runs []Run) []Percentiles {
	names := HopNames(path)
	out := make([]Percentiles, len(names))
	for i, name := range names {
		var xs []time.Duration
		for _, r := range runs {
			if i < len(r.Found) && r.Found[i] {
				xs = append(xs, r.Timings[i])
			}
		}
		slices.Sort(xs)
		out[i] = Percentiles{Hop: name, N: len(xs), P50: Quantile(xs, 0.5), P90: Quantile(xs, 0.9), P99: Quantile(xs, 0.99)}
		if len(xs) > 0 {
			out[i].Max = xs[len(xs)-1]
		}
	}
	return out
}

// FormatHops writes p50, p90, p99 and max of every hop of a path.
func FormatHops(w io.Writer, path string, ps []Percentiles) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s hop\tn\tp50\tp90\tp99\tmax\t\n", path)
	for _, p := range ps {
		if p.N == 0 {
			fmt.Fprintf(tw, "%s\t0\t—\t—\t—\t—\t\n", p.Hop)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t\n", p.Hop, p.N, human(p.P50.Seconds()), human(p.P90.Seconds()), human(p.P99.Seconds()), human(p.Max.Seconds()))
	}
	tw.Flush()
}
