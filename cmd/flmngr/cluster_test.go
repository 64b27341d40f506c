package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/projections/viewstore"
	"github.com/flmngr/flmngr/services/agent"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/testkit"
)

// TestClusterLosesANode runs the FedAvg task with two clients on a
// three-node JetStream cluster, every stream with three replicas, and
// shuts one NATS node down between rounds: a follower, then the event
// stream's leader. The run must finish on both sides, every event the
// log acknowledged must still be in it, and the views must equal a
// rebuild from the log. It logs how long the system took to make
// progress again.
func TestClusterLosesANode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a NATS cluster and a FedAvg run")
	}
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, victim := range []string{"follower", "leader"} {
		t.Run(victim, func(t *testing.T) { loseANode(t, bin, victim) })
	}
}

func loseANode(t *testing.T, bin, victim string) {
	ctx := context.Background()
	cl := jstest.NewCluster(t, 3)
	dir := t.TempDir()
	acks := newAckLog()
	c, err := cloud.Open(ctx, cloud.Config{DataDir: filepath.Join(dir, "cloud"), NATSURL: cl.URLs(), Replicas: 3,
		Name: "cloud-1", Grace: 2 * time.Second, OnAppend: acks.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	for _, id := range []string{"site-1", "site-2"} {
		runClusterAgent(t, cl, id, filepath.Join(dir, id))
	}
	op := api.NewClient(cl.Connect(t), 30*time.Second).WithSource("test")
	if _, err := prepareDemoTask(ctx, c, op, 2, io.Discard); err != nil {
		t.Fatal(err)
	}
	// The task's processes are this flmngr, not the test binary.
	server, client := []string{bin, "fl", "server", "--listen", "{host}:{port}", "--config", "fedavg.json"},
		[]string{bin, "fl", "client", "--server", "{host}:{port}", "--config", "fedavg.json"}
	if _, err := op.UpdateTask(ctx, commands.UpdateTask{TaskID: demoTask, ServerCommand: &server, ClientCommand: &client}); err != nil {
		t.Fatal(err)
	}
	// A task that is never started: the test updates it after the kill to
	// see how soon a command goes through again.
	if _, err := op.CreateTask(ctx, commands.CreateTask{TaskID: "probe", Host: "127.0.0.1", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if err := waitClients(ctx, op, 2); err != nil {
		t.Fatal(err)
	}
	requireReplicas(t, cl, 3)

	w := watchLog(t, cl)
	args := "--min-clients 2 --rounds 8"
	started := time.Now()
	if _, err := op.StartTask(ctx, commands.StartTask{TaskID: demoTask, Arguments: &args}); err != nil {
		t.Fatal(err)
	}
	run := "1"
	w.await(t, "round 2", func(e events.Envelope) bool {
		p, ok := e.Event.(*events.TaskRoundCompleted)
		return ok && p.Run == run && p.Round == 2
	})

	node := pickVictim(t, cl, c.Conn(), victim)
	before := acks.len()
	killed := time.Now()
	cl.Kill(node)
	t.Logf("killed %s (%s) after round 2, %d events acknowledged", node.Name(), victim, before)
	// When the views applied the first event appended after the kill.
	viewsBack, viewsDone := time.Duration(-1), make(chan struct{})
	vctx, stopViews := context.WithTimeout(ctx, 2*time.Minute)
	defer func() { stopViews(); <-viewsDone }()
	go func() {
		defer close(viewsDone)
		if a, ok := acks.next(vctx, killed); ok && c.Views.WaitFor(vctx, a.seq) == nil {
			viewsBack = time.Since(killed)
		}
	}()
	commandBack := probe(t, op, killed)
	leaderBack := waitStreamLeader(t, cl, eventlog.Config{}.Defaults().Stream)

	ended := w.await(t, "the run to end", func(e events.Envelope) bool {
		switch p := e.Event.(type) {
		case *events.TaskFinished:
			return p.Run == run
		case *events.TaskErrored:
			return p.Run == run
		case *events.TaskInterrupted:
			return p.Run == run
		}
		return false
	})
	if ended.Type != events.TaskFinishedV1 {
		t.Fatalf("the run ended with %s: %+v", ended.Type, ended.Event)
	}
	took := time.Since(started)
	for _, id := range []string{"site-1", "site-2"} {
		w.await(t, id+" to finish", func(e events.Envelope) bool {
			p, ok := e.Event.(*events.ClientTaskFinished)
			return ok && e.Aggregate.ID == id && p.TaskID == demoTask && p.Run == run
		})
	}
	// The last events of the run: the server and both client processes
	// are gone.
	w.await(t, "the server to exit", func(e events.Envelope) bool {
		p, ok := e.Event.(*events.TaskServerExited)
		return ok && p.Run == run
	})
	for _, id := range []string{"site-1", "site-2"} {
		w.await(t, id+"'s process to exit", func(e events.Envelope) bool {
			p, ok := e.Event.(*events.ClientTaskExited)
			return ok && e.Aggregate.ID == id && p.TaskID == demoTask && p.Run == run
		})
	}
	rounds := w.count(func(e events.Envelope) bool {
		p, ok := e.Event.(*events.TaskRoundCompleted)
		return ok && p.Run == run
	})
	if rounds != 8 {
		t.Errorf("%d rounds recorded, want 8", rounds)
	}

	// Every acknowledged event is in the stream, at the sequence its
	// acknowledgement gave, once.
	log, err := eventlog.Attach(ctx, cl.Connect(t), eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	acked := acks.seqs()
	stored := readStreamThrough(t, log, slices.Max(slices.Collect(maps.Values(acked))))
	for id, seq := range acked {
		if stored[id] != seq {
			t.Errorf("acknowledged event %s at %d: stored at %d", id, seq, stored[id])
		}
	}
	viewsEqualRebuild(t, c, log)

	<-viewsDone
	next, ok := acks.first(killed, "")
	round, rok := acks.first(killed, events.TaskRoundCompletedV1)
	if !ok || !rok {
		t.Fatal("nothing was appended after the kill")
	}
	t.Logf("time to converge after losing a NATS node (%s): a command through the API went through after %s; stream leader after %s; "+
		"next append acknowledged after %s, next round after %s; a follower got that round after %s, the views applied the next event after %s",
		victim, ms(commandBack), ms(leaderBack), ms(next.at.Sub(killed)), ms(round.at.Sub(killed)), ms(w.seenAfter(round.id, killed)), ms(viewsBack))
	t.Logf("run of %d rounds took %s; events: %d acknowledged before the kill, %d after, %d in the stream, every acknowledged one at its sequence",
		rounds, ms(took), before, len(acked)-before, len(stored))
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// probe updates the probe task as an operator's client that retries
// would, with an idempotency key, until the command goes through, and
// returns how long after since that was. While the cloud's or the
// client's own connection moves to another node, requests find no
// responder or lose their reply.
func probe(t *testing.T, op *api.Client, since time.Time) time.Duration {
	t.Helper()
	ctx := commands.WithIdempotencyKey(context.Background(), "probe-after-the-kill")
	for {
		actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := op.UpdateTask(actx, commands.UpdateTask{TaskID: "probe", Tags: &[]string{"after-the-kill"}})
		cancel()
		switch {
		case err == nil:
			return time.Since(since)
		case fault.KindOf(err) != fault.KindUnavailable || time.Since(since) > time.Minute:
			t.Fatalf("a command after the kill: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // a client's back-off, not a wait for state
	}
}

// readStreamThrough reads the whole event stream, at least through sequence
// through (a replica that lags may not know the last one yet), and
// returns the sequence of every event id; an id stored twice fails.
func readStreamThrough(t *testing.T, log *eventlog.Log, through uint64) map[string]uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	last, err := log.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	through = max(through, last)
	stored := map[string]uint64{}
	errDone := errors.New("done")
	err = log.Follow(ctx, eventlog.FollowOptions{}, func(e events.Envelope) error {
		if prev, dup := stored[e.ID]; dup {
			return fmt.Errorf("event %s stored at %d and %d", e.ID, prev, e.Seq)
		}
		stored[e.ID] = e.Seq
		if e.Seq >= through {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("read the stream through %d: %v (%d events read)", through, err, len(stored))
	}
	return stored
}

// ackLog records every event a cloud appended, as the log acknowledged
// it.
type ackLog struct {
	mu   sync.Mutex
	list []ack
	more chan struct{} // closed when list grows
}

type ack struct {
	id, typ string
	seq     uint64
	at      time.Time
}

func newAckLog() *ackLog { return &ackLog{more: make(chan struct{})} }

func (a *ackLog) add(envs []events.Envelope) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, e := range envs {
		a.list = append(a.list, ack{id: e.ID, typ: e.Type, seq: e.Seq, at: now})
	}
	close(a.more)
	a.more = make(chan struct{})
}

func (a *ackLog) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.list)
}

// seqs maps the id of every acknowledged event to its sequence.
func (a *ackLog) seqs() map[string]uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]uint64, len(a.list))
	for _, x := range a.list {
		out[x.id] = x.seq
	}
	return out
}

// first returns the first event of a type ("": any) acknowledged after t.
func (a *ackLog) first(t time.Time, typ string) (ack, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, x := range a.list {
		if x.at.After(t) && (typ == "" || x.typ == typ) {
			return x, true
		}
	}
	return ack{}, false
}

// next waits for the first event acknowledged after t.
func (a *ackLog) next(ctx context.Context, t time.Time) (ack, bool) {
	for {
		x, ok := a.first(t, "")
		a.mu.Lock()
		more := a.more
		a.mu.Unlock()
		if ok {
			return x, true
		}
		select {
		case <-more:
		case <-ctx.Done():
			return ack{}, false
		}
	}
}

// runClusterAgent runs a client agent with camera data on its own
// connection to every node of the cluster until the test ends.
func runClusterAgent(t *testing.T, cl *jstest.Cluster, id, dir string) {
	t.Helper()
	nc := cl.Connect(t, nats.Name("flmngr-client "+id), nats.CustomInboxPrefix(auth.InboxPrefix(id)))
	camera := []string{"camera"}
	a, err := agent.New(nc, agent.Config{ClientID: id, Info: commands.ClientInfo{Sensors: &camera, DataQnt: new(int64(30000))},
		WorkDir: dir, Grace: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := a.Run(ctx); err != nil {
			t.Errorf("agent %s: %v", id, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// requireReplicas checks that every stream the cloud created, the object
// store's included, and its durable consumer have n replicas.
func requireReplicas(t *testing.T, cl *jstest.Cluster, n int) {
	t.Helper()
	js, err := jetstream.New(cl.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"FLMNGR_EVENTS", "FLMNGR_LOGS", "OBJ_FLMNGR_FILES", "FLMNGR_EVENTS>flmngr-server-supervisor"}
	var found map[string]int
	// The supervisor creates its consumer once it runs.
	jstest.WaitFor(t, 30*time.Second, fmt.Sprintf("%v to have leaders", want), func() bool {
		found = replicas(t, js)
		for _, name := range want {
			if _, ok := found[name]; !ok {
				return false
			}
		}
		return !slices.Contains(slices.Collect(maps.Values(found)), 0)
	})
	var wrong []string
	for name, peers := range found {
		if peers != n {
			wrong = append(wrong, fmt.Sprintf("%s has %d", name, peers))
		}
	}
	if len(wrong) > 0 {
		t.Fatalf("want %d replicas: %s", n, strings.Join(wrong, ", "))
	}
	names := slices.Sorted(maps.Keys(found))
	t.Logf("replicated %d times: %v", n, names)
}

// replicas returns how many replicas each stream and durable consumer of
// the account has; 0 while it has no leader.
func replicas(t *testing.T, js jetstream.JetStream) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peers := func(c *jetstream.ClusterInfo) int {
		if c == nil || c.Leader == "" {
			return 0
		}
		return len(c.Replicas) + 1
	}
	found := map[string]int{}
	streams := js.ListStreams(ctx)
	for s := range streams.Info() {
		found[s.Config.Name] = peers(s.Cluster)
		st, err := js.Stream(ctx, s.Config.Name)
		if err != nil {
			t.Fatal(err)
		}
		// Names, then each consumer's info: listing infos waits 4s for
		// consumers that just went away.
		consumers := st.ConsumerNames(ctx)
		for name := range consumers.Name() {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			cons, err := st.Consumer(cctx, name)
			cancel()
			switch {
			case errors.Is(err, jetstream.ErrConsumerNotFound):
			case err != nil:
				found[s.Config.Name+">"+name] = 0 // no leader to answer yet
			case cons.CachedInfo().Config.Durable != "": // ordered consumers have one replica by design
				found[s.Config.Name+">"+name] = peers(cons.CachedInfo().Cluster)
			}
		}
		if err := consumers.Err(); err != nil {
			t.Fatalf("consumers of %s: %v", s.Config.Name, err)
		}
	}
	if err := streams.Err(); err != nil {
		t.Fatalf("streams: %v", err)
	}
	return found
}

// pickVictim returns the node to shut down: the event stream's leader, or
// a follower, the cloud's own node when that is one.
func pickVictim(t *testing.T, cl *jstest.Cluster, cloudConn *nats.Conn, victim string) *server.Server {
	t.Helper()
	stream := eventlog.Config{}.Defaults().Stream
	leader := cl.StreamLeader(stream)
	if leader == nil {
		t.Fatal("the event stream has no leader")
	}
	if victim == "leader" {
		return leader
	}
	if n := cl.Node(cloudConn); n != nil && n != leader {
		return n
	}
	for _, s := range cl.Servers {
		if s != leader && s.Running() {
			return s
		}
	}
	t.Fatal("no follower")
	return nil
}

// waitStreamLeader waits until a stream has a leader and returns how long
// that took.
func waitStreamLeader(t *testing.T, cl *jstest.Cluster, stream string) time.Duration {
	t.Helper()
	start := time.Now()
	jstest.WaitFor(t, time.Minute, "a leader of "+stream, func() bool { return cl.StreamLeader(stream) != nil })
	return time.Since(start)
}

// logWatch keeps every event of the log, as a follower receives them.
type logWatch struct {
	mu      sync.Mutex
	history []events.Envelope
	seen    []time.Time
	more    chan struct{}
}

// watchLog follows the whole log on its own connection until the test
// ends.
func watchLog(t *testing.T, cl *jstest.Cluster) *logWatch {
	t.Helper()
	log, err := eventlog.Attach(context.Background(), cl.Connect(t), eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	w := &logWatch{more: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = log.Follow(ctx, eventlog.FollowOptions{From: 1}, func(e events.Envelope) error {
			w.mu.Lock()
			w.history = append(w.history, e)
			w.seen = append(w.seen, time.Now())
			close(w.more)
			w.more = make(chan struct{})
			w.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// await returns the first event that matches, waiting for it.
func (w *logWatch) await(t *testing.T, what string, match func(events.Envelope) bool) events.Envelope {
	t.Helper()
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	for {
		w.mu.Lock()
		i := slices.IndexFunc(w.history, match)
		var e events.Envelope
		if i >= 0 {
			e = w.history[i]
		}
		more := w.more
		w.mu.Unlock()
		if i >= 0 {
			return e
		}
		select {
		case <-more:
		case <-timeout.C:
			t.Fatalf("timed out waiting for %s; the log:\n%s", what, w)
		}
	}
}

// String lists the events seen.
func (w *logWatch) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for i, e := range w.history {
		fmt.Fprintf(&b, "%4d %s %-22s %-16s %-28s %s\n", e.Seq, w.seen[i].Format("15:04:05.000"), e.Source, e.Aggregate, e.Type, e.Payload)
	}
	return b.String()
}

func (w *logWatch) count(match func(events.Envelope) bool) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.history {
		if match(e) {
			n++
		}
	}
	return n
}

// seenAfter is how long after t the follower got an event (-1: never).
func (w *logWatch) seenAfter(id string, t time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, e := range w.history {
		if e.ID == id {
			return w.seen[i].Sub(t)
		}
	}
	return -1
}

// viewsEqualRebuild waits until the cloud's views applied the whole log,
// then rebuilds views from the log elsewhere and compares every key.
func viewsEqualRebuild(t *testing.T, c *cloud.Cloud, log *eventlog.Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for attempt := 1; ; attempt++ {
		last, err := log.LastSeq(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Views.WaitFor(ctx, last); err != nil {
			t.Fatalf("views at %d of %d: %v", c.Views.Applied(), last, err)
		}
		incremental := dumpViews(t, c.Views)
		fresh, err := viewstore.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := fresh.RebuildOffline(ctx, log)
		if err != nil {
			t.Fatal(err)
		}
		rebuilt := dumpViews(t, fresh)
		if err := fresh.Close(); err != nil {
			t.Fatal(err)
		}
		var diff []string
		for k, v := range incremental {
			if !bytes.Equal(rebuilt[k], v) {
				diff = append(diff, fmt.Sprintf("key %q differs:\n incremental %s\n rebuilt     %s", k, v, rebuilt[k]))
			}
		}
		for k := range rebuilt {
			if _, ok := incremental[k]; !ok {
				diff = append(diff, fmt.Sprintf("key %q only in the rebuilt views", k))
			}
		}
		if len(diff) == 0 {
			t.Logf("views equal a rebuild from the log: %d keys, %d events", len(incremental), seq)
			return
		}
		if seq == last && c.Views.Applied() == last || attempt == 5 {
			t.Fatalf("views differ from a rebuild at %d:\n%s", seq, strings.Join(diff, "\n"))
		}
		// Events came in meanwhile; compare again.
	}
}

func dumpViews(t *testing.T, s *viewstore.Store) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if err := s.Dump(func(k, v []byte) error { out[string(k)] = bytes.Clone(v); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}
