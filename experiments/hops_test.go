package experiments_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/experiments"
)

// at is a moment t0 + ms milliseconds.
var t0 = time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC)

func at(ms float64) time.Time { return t0.Add(time.Duration(ms * float64(time.Millisecond))) }

// logOf numbers events from 1, as the stream would.
type logOf []events.Envelope

func (l *logOf) add(t *testing.T, agg events.Aggregate, sentMS, recordedMS float64, p events.Payload) events.Envelope {
	t.Helper()
	e, err := events.New("e", "test", agg, at(recordedMS), p)
	if err != nil {
		t.Fatal(err)
	}
	if sentMS >= 0 {
		sent := at(sentMS)
		e.RequestedAt = &sent
	}
	e.Seq = uint64(len(*l) + 1)
	*l = append(*l, e)
	return e
}

func hopsByName(t *testing.T, path string, r experiments.Run) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	for i, name := range experiments.HopNames(path) {
		if !r.Found[i] {
			t.Fatalf("hop %q not found", name)
		}
		out[name] = r.Timings[i]
	}
	return out
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// TestSpawnPathHops lays out a start, its offer, the download, the spawn
// and the first line at known times and checks every hop of the path.
func TestSpawnPathHops(t *testing.T) {
	var l logOf
	l.add(t, events.Client("c1"), 0, 0.2, &events.ClientRegistered{})
	start := l.add(t, events.Task("T"), 10, 10.5, &events.TaskStartRequested{Run: "1"})
	l.add(t, events.Client("c1"), 12, 12.25, &events.ClientOffersChanged{Cause: "task.start_requested.v1 T@" + strconv.FormatUint(start.Seq, 10),
		Offers: []events.Offer{{TaskID: "T", Run: "1"}}})
	l.add(t, events.Client("c1"), 16, 16.5, &events.ClientTaskDownloaded{TaskID: "T", Run: "1", Duration: ms(2)})
	l.add(t, events.Client("c1"), 17, 17.75, &events.ClientTaskStarted{TaskID: "T", Run: "1"})
	l.add(t, events.Client("c1"), 18.5, 19, &events.ClientTaskRunning{TaskID: "T", Run: "1"})

	r, ok := experiments.SpawnPath(l, "c1", "T", "1")
	if !ok {
		t.Fatal("no path")
	}
	got := hopsByName(t, experiments.PathSpawn, r)
	want := map[string]time.Duration{
		"command → log":                          ms(0.5),
		"log → matcher":                          ms(1.5),
		"matcher → offer recorded":               ms(0.25),
		"offer → agent":                          ms(1.75), // the download began at 16 - 2
		"download + verify":                      ms(2),
		"verified → spawned":                     ms(1),
		"spawned → first line":                   ms(1.5),
		"report → log":                           ms(0.75),
		"total: cause recorded → spawn recorded": ms(7.25),
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %s, want %s", name, got[name], w)
		}
	}
	// The hops between the cause and the spawn's record add up to it.
	sum := got["log → matcher"] + got["matcher → offer recorded"] + got["offer → agent"] + got["download + verify"] + got["verified → spawned"] + got["report → log"]
	if sum != got["total: cause recorded → spawn recorded"] {
		t.Errorf("hops add up to %s, total %s", sum, got["total: cause recorded → spawn recorded"])
	}
}

// TestFailoverPathHops checks every hop from a client's error to the next
// task's first line.
func TestFailoverPathHops(t *testing.T) {
	var l logOf
	l.add(t, events.Client("c1"), 0, 1, &events.ClientTaskErrored{TaskID: "E", Run: "3", Exception: "x"})
	l.add(t, events.Client("c1"), 0.25, 1.5, &events.ClientTaskQuarantined{TaskID: "E", Run: "3"})
	l.add(t, events.Client("c1"), 1.5, 2, &events.ClientTaskDownloaded{TaskID: "C", Run: "2", Duration: ms(0.5)})
	l.add(t, events.Client("c1"), 3, 80, &events.ClientTaskStarted{TaskID: "C", Run: "2"})
	l.add(t, events.Client("c1"), 4, 81, &events.ClientTaskRunning{TaskID: "C", Run: "2"})

	r, ok := experiments.FailoverPath(l, "c1", "E", "3", "C", "2")
	if !ok {
		t.Fatal("no path")
	}
	got := hopsByName(t, experiments.PathFailover, r)
	want := map[string]time.Duration{
		"error line → report":                    ms(0.25),
		"quarantined → next download":            ms(0.75),
		"download + verify":                      ms(0.5),
		"verified → spawned":                     ms(1.5),
		"spawned → first line":                   ms(1),
		"report → log (error)":                   ms(1),
		"report → log (spawn)":                   ms(77),
		"total: error recorded → spawn recorded": ms(79),
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %s, want %s", name, got[name], w)
		}
	}
}

// TestHopPercentiles checks the nearest-rank percentiles the hops table
// prints, and that a hop found in no run is shown as such.
func TestHopPercentiles(t *testing.T) {
	var runs []experiments.Run
	n := len(experiments.FailoverHops)
	for i := 1; i <= 100; i++ {
		r := experiments.Run{Timings: make([]time.Duration, n), Found: make([]bool, n)}
		r.Timings[0], r.Found[0] = ms(float64(i)), true
		runs = append(runs, r)
	}
	ps := experiments.HopPercentiles(experiments.PathFailover, runs)
	if p := ps[0]; p.N != 100 || p.P50 != ms(50) || p.P90 != ms(90) || p.P99 != ms(99) || p.Max != ms(100) {
		t.Fatalf("percentiles of 1..100 ms: %+v", p)
	}
	var out strings.Builder
	experiments.FormatHops(&out, experiments.PathFailover, ps)
	if !strings.Contains(out.String(), "50.00 ms") || !strings.Contains(out.String(), "—") {
		t.Fatalf("hops table:\n%s", out.String())
	}
}
