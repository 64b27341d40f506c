package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/experiments"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/agent"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/testkit"
)

// deployment is one cloud and one agent in this process.
type deployment struct {
	cloud *cloud.Cloud
	api   *api.Client
	log   *eventlog.Log
	seen  chan events.Envelope
	all   []events.Envelope // every event awaitAll read, for the hops
}

func deploy(b *testing.B, clientID string) *deployment {
	b.Helper()
	dir := b.TempDir()
	c, err := cloud.Open(context.Background(), cloud.Config{DataDir: filepath.Join(dir, "cloud"), Listen: "127.0.0.1:0", Name: "bench", Grace: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	nc, err := c.ConnectClient(context.Background(), clientID)
	if err != nil {
		b.Fatal(err)
	}
	d := &deployment{cloud: c, api: api.NewClient(c.Conn(), 10*time.Second), log: c.Log, seen: make(chan events.Envelope, 1024)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_ = c.Log.Follow(ctx, eventlog.FollowOptions{From: 1}, func(e events.Envelope) error {
			d.seen <- e
			return nil
		})
	}()
	a, err := agent.New(nc, agent.Config{ClientID: clientID, WorkDir: filepath.Join(dir, "agent"), Grace: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return d
}

// awaitAll returns, for each matcher, the next event that satisfies it, in
// whatever order they come.
func (d *deployment) awaitAll(b *testing.B, matches ...func(events.Envelope) bool) []events.Envelope {
	b.Helper()
	out := make([]events.Envelope, len(matches))
	found := make([]bool, len(matches))
	left := len(matches)
	timeout := time.After(30 * time.Second)
	for left > 0 {
		select {
		case e := <-d.seen:
			d.all = append(d.all, e)
			for i, m := range matches {
				if !found[i] && m(e) {
					out[i], found[i] = e, true
					left--
					break
				}
			}
		case <-timeout:
			b.Fatalf("timed out waiting for events (%d of %d seen)", len(matches)-left, len(matches))
		}
	}
	return out
}

func isType(typ, agg string) func(events.Envelope) bool {
	return func(e events.Envelope) bool { return e.Type == typ && e.Aggregate.ID == agg }
}

func clientEvent(typ, task string) func(events.Envelope) bool {
	return func(e events.Envelope) bool {
		if e.Type != typ {
			return false
		}
		switch p := e.Event.(type) {
		case *events.ClientTaskStarted:
			return p.TaskID == task
		case *events.ClientTaskErrored:
			return p.TaskID == task
		case *events.ClientTaskStopped:
			return p.TaskID == task
		case *events.ClientTaskRunning:
			return p.TaskID == task
		}
		return false
	}
}

func (d *deployment) create(b *testing.B, id string, client []string) {
	b.Helper()
	ctx := context.Background()
	if _, err := d.api.CreateTask(ctx, commands.CreateTask{TaskID: id, Host: "localhost", Port: 8080,
		ServerCommand: []string{"sleep", "600"}, ClientCommand: client}); err != nil {
		b.Fatal(err)
	}
}

// report prints a path's hops and reports its total's percentiles.
func report(b *testing.B, path string, runs []experiments.Run) {
	hops := experiments.HopPercentiles(path, runs)
	var out strings.Builder
	experiments.FormatHops(&out, path, hops)
	b.Logf("%d runs:\n%s", len(runs), out.String())
	total := hops[len(hops)-1]
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(total.P50), "p50-ms")
	b.ReportMetric(ms(total.P90), "p90-ms")
	b.ReportMetric(ms(total.P99), "p99-ms")
}

// goTask builds the smallest Go task process (testdata/gotask).
func goTask(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "gotask")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/gotask").CombinedOutput(); err != nil {
		b.Fatalf("build the Go task: %v\n%s", err, out)
	}
	return bin
}

// BenchmarkStartToClientSpawn measures, from the recorded times of the
// events, how long after a start is requested the matching client's
// process was spawned, hop by hop: the matcher, the offer pushed to the
// agent, download and check of the task's files, spawn of a Go task
// process and its first line, and the report back into the log.
func BenchmarkStartToClientSpawn(b *testing.B) {
	task := goTask(b)
	d := deploy(b, "c1")
	d.create(b, "T", []string{task})
	ctx := context.Background()
	var runs []experiments.Run
	for b.Loop() {
		if _, err := d.api.StartTask(ctx, commands.StartTask{TaskID: "T"}); err != nil {
			b.Fatal(err)
		}
		got := d.awaitAll(b, isType(events.TaskStartRequestedV1, "T"), clientEvent(events.ClientTaskRunningV1, "T"))
		run := got[0].Event.(*events.TaskStartRequested).Run
		if _, err := d.api.StopTask(ctx, "T"); err != nil {
			b.Fatal(err)
		}
		d.awaitAll(b, isType(events.TaskStoppedV1, "T"), clientEvent(events.ClientTaskStoppedV1, "T"))
		r, ok := experiments.SpawnPath(d.all, "c1", "T", run)
		if !ok {
			b.Fatalf("run %s: the path to the spawn is not in the log", run)
		}
		runs = append(runs, r)
	}
	report(b, experiments.PathSpawn, runs)
}

// BenchmarkErrorToFailover measures the original's experiment 2 step: a
// client process reports an error; how long until the client process of
// the next offered task is spawned (from the errored event, recorded as
// soon as the error line is read, to the next task's started event), hop
// by hop. Both tasks are Go task processes.
func BenchmarkErrorToFailover(b *testing.B) {
	task := goTask(b)
	d := deploy(b, "c1")
	// E fails as soon as C is offered too: the client runs E (its one
	// slot) and C waits for it. E's error is sent by a script that waits
	// for its go-ahead file, which the benchmark writes once C is offered.
	goAhead := filepath.Join(b.TempDir(), "go")
	d.create(b, "E", []string{"sh", "-c", `while [ ! -e ` + goAhead + ` ]; do sleep 0.01; done; exec ` + task + ` test-error`})
	d.create(b, "C", []string{task})
	ctx := context.Background()
	var runs []experiments.Run
	for b.Loop() {
		_ = os.Remove(goAhead)
		if _, err := d.api.StartTask(ctx, commands.StartTask{TaskID: "E"}); err != nil {
			b.Fatal(err)
		}
		e := d.awaitAll(b, clientEvent(events.ClientTaskStartedV1, "E"))[0]
		if _, err := d.api.StartTask(ctx, commands.StartTask{TaskID: "C"}); err != nil {
			b.Fatal(err)
		}
		d.awaitAll(b, offered("c1", "C"))
		if err := os.WriteFile(goAhead, nil, 0o600); err != nil {
			b.Fatal(err)
		}
		got := d.awaitAll(b, clientEvent(events.ClientTaskErroredV1, "E"), clientEvent(events.ClientTaskRunningV1, "C"))
		_, eRun, _ := events.TaskRunOf(e.Event)
		_, cRun, _ := events.TaskRunOf(got[1].Event)
		for _, id := range []string{"E", "C"} {
			if _, err := d.api.StopTask(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
		d.awaitAll(b, isType(events.TaskStoppedV1, "E"), isType(events.TaskStoppedV1, "C"), clientEvent(events.ClientTaskStoppedV1, "C"))
		r, ok := experiments.FailoverPath(d.all, "c1", "E", eRun, "C", cRun)
		if !ok {
			b.Fatalf("run %s: the failover is not in the log", eRun)
		}
		runs = append(runs, r)
	}
	report(b, experiments.PathFailover, runs)
}

// offered matches the offers event that first offers a task to a client.
func offered(client, task string) func(events.Envelope) bool {
	return func(e events.Envelope) bool {
		p, ok := e.Event.(*events.ClientOffersChanged)
		return ok && e.Aggregate.ID == client && slices.ContainsFunc(p.Offers, func(o events.Offer) bool { return o.TaskID == task })
	}
}

// BenchmarkOfferFanOut starts a task matching N simulated clients (agents
// that report and follow their offers but spawn nothing) and measures when
// the last of them received its offer, against a cloud running as its own
// `flmngr up` process, whose peak resident memory it reports. Skipped with
// -short.
func BenchmarkOfferFanOut(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			if testing.Short() && n > 1000 {
				b.Skip("10,000 clients skipped in -short mode")
			}
			fanOut(b, n)
		})
	}
}

func fanOut(b *testing.B, n int) {
	bin := testkit.Binary(b)
	addr := testkit.FreeAddr(b)
	// Without identities: the simulated clients have no keys (a key per
	// client changes nothing on the offers' path).
	up := exec.Command(bin, "up", "--data", filepath.Join(b.TempDir(), "data"), "--listen", addr, "--http", "127.0.0.1:0", "--log-level", "warn", "--auth=false")
	up.Stderr = os.Stderr
	if err := up.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = up.Process.Kill(); _ = up.Wait() })
	connect := func(opts ...nats.Option) *nats.Conn {
		nc, err := nats.Connect("nats://"+addr, append(opts, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(nc.Close)
		return nc
	}
	c := api.NewClient(connect(), 30*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	poll(b, func() bool { _, err := c.Status(ctx); return err == nil })

	// Each round starts the task, waits until every client was offered
	// it, then stops it and waits until every offer is withdrawn.
	var mu sync.Mutex
	offeredAt, withdrawn := map[string]time.Time{}, map[string]bool{}
	allOffered, allWithdrawn := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	sensors := []string{"camera"}
	for i := range n {
		id := fmt.Sprintf("sim%05d", i)
		// Each client has its own connection: the cloud answers it on its
		// own inbox prefix only.
		cfg := agent.Config{ClientID: id, Info: commands.ClientInfo{Sensors: &sensors}, Heartbeat: time.Minute}
		a, err := agent.NewSimulated(connect(nats.CustomInboxPrefix(auth.InboxPrefix(id))), cfg,
			func(e events.Envelope) {
				offered := len(e.Event.(*events.ClientOffersChanged).Offers) > 0
				mu.Lock()
				defer mu.Unlock()
				switch _, seen := offeredAt[id]; {
				case offered && !seen:
					offeredAt[id] = time.Now()
					if len(offeredAt) == n {
						close(allOffered)
					}
				case !offered && seen && !withdrawn[id]:
					withdrawn[id] = true
					if len(withdrawn) == n {
						close(allWithdrawn)
					}
				}
			})
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { _ = a.Run(ctx) })
	}
	b.Cleanup(func() { cancel(); wg.Wait() })
	poll(b, func() bool { s, err := c.Status(ctx); return err == nil && s.Clients == n })
	if _, err := c.CreateTask(ctx, commands.CreateTask{TaskID: "wide", Host: "localhost", Port: 8080, SelectionCriteria: `"camera" in sensors`,
		ServerCommand: []string{"sleep", "600"}}); err != nil {
		b.Fatal(err)
	}
	wait := func(ch chan struct{}, what string) {
		select {
		case <-ch:
		case <-time.After(2 * time.Minute):
			mu.Lock()
			defer mu.Unlock()
			b.Fatalf("%s: %d offered, %d withdrawn of %d clients", what, len(offeredAt), len(withdrawn), n)
		}
	}
	var took []time.Duration
	for b.Loop() {
		r, err := c.StartTask(ctx, commands.StartTask{TaskID: "wide"})
		if err != nil {
			b.Fatal(err)
		}
		wait(allOffered, "start")
		start := recordedAt(b, c, r.Seq)
		var last time.Time
		mu.Lock()
		for _, at := range offeredAt {
			if at.After(last) {
				last = at
			}
		}
		mu.Unlock()
		took = append(took, last.Sub(start))
		if _, err := c.StopTask(ctx, "wide"); err != nil {
			b.Fatal(err)
		}
		wait(allWithdrawn, "stop")
		mu.Lock()
		offeredAt, withdrawn = map[string]time.Time{}, map[string]bool{}
		allOffered, allWithdrawn = make(chan struct{}), make(chan struct{})
		mu.Unlock()
	}
	slices.Sort(took)
	median := took[len(took)/2]
	rss := peakRSS(b, up.Process.Pid)
	b.ReportMetric(median.Seconds(), "all-offered-s")
	b.ReportMetric(float64(rss)/(1<<20), "cloud-peak-MiB")
	b.Logf("%d clients, %d starts: all offered %.3f s (median; slowest %.3f s) after the start request was recorded; cloud peak RSS %d MiB",
		n, len(took), median.Seconds(), took[len(took)-1].Seconds(), rss>>20)
}

// poll waits for cond while the deployment comes up.
func poll(b *testing.B, cond func() bool) {
	if !testkit.Until(2*time.Minute, cond) {
		b.Fatal("timed out")
	}
}

// recordedAt is the time of the event at seq.
func recordedAt(b *testing.B, c *api.Client, seq uint64) time.Time {
	page, err := c.Timeline(context.Background(), api.TimelineRequest{TimelineQuery: projections.TimelineQuery{After: seq - 1, Limit: 1}})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Seq != seq {
		b.Fatalf("event %d: %+v %v", seq, page.Entries, err)
	}
	return page.Entries[0].Time
}

// peakRSS reads a process's peak resident set size (VmHWM).
func peakRSS(b *testing.B, pid int) int64 {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
