package presence_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/projections/viewstore"
	"github.com/flmngr/flmngr/services/presence"
	"github.com/flmngr/flmngr/services/testkit"
)

// timeout is the silence after which a client is offline in these tests.
const timeout = 300 * time.Millisecond

// watched records what the monitor asks the real command handler, so the
// tests see the monitor's decisions and not only what the domain kept.
type watched struct {
	h  *commands.Handler
	mu sync.Mutex
	// asked are the presence commands, in order.
	asked []commands.RecordPresence
}

func (w *watched) Execute(ctx context.Context, cmd commands.Command) (commands.Result, error) {
	if c, ok := cmd.(commands.RecordPresence); ok {
		w.mu.Lock()
		w.asked = append(w.asked, c)
		w.mu.Unlock()
	}
	return w.h.Execute(ctx, cmd)
}

// askedFor returns the presence commands about client id.
func (w *watched) askedFor(id string) []commands.RecordPresence {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []commands.RecordPresence
	for _, c := range w.asked {
		if c.ClientID == id {
			out = append(out, c)
		}
	}
	return out
}

type rig struct {
	t     *testing.T
	nc    *nats.Conn
	log   *eventlog.Log
	cmds  *watched
	views *viewstore.Store
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ns := jstest.Server(t, "")
	nc := jstest.Connect(t, ns)
	log := jstest.Open(t, nc)
	views, err := viewstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- views.Run(ctx, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("views: %v", err)
		}
		views.Close()
	})
	return &rig{t: t, nc: nc, log: log, cmds: &watched{h: commands.NewHandler(log, commands.Config{})}, views: views}
}

// register registers client id as its own agent does, which brings it
// online, and waits for the views to have it.
func (r *rig) register(id string) {
	r.t.Helper()
	ctx := commands.WithSource(context.Background(), commands.AgentSource(id))
	if _, err := r.cmds.h.Execute(ctx, commands.RegisterClient{ClientID: id}); err != nil {
		r.t.Fatal(err)
	}
	r.caughtUp()
}

func (r *rig) caughtUp() {
	r.t.Helper()
	last, err := r.log.LastSeq(context.Background())
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.views.WaitFor(ctx, last); err != nil {
		r.t.Fatal(err)
	}
}

// monitor runs a presence monitor until the test ends.
func (r *rig) monitor() {
	m := presence.New(r.nc, r.cmds, r.views, presence.Config{Timeout: timeout})
	subs := r.nc.NumSubscriptions()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	r.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("presence: %v", err)
		}
	})
	// Heartbeats reach it once it subscribed and a round trip through
	// the server is done.
	testkit.WaitFor(r.t, 10*time.Second, "the monitor to subscribe", func() error {
		if r.nc.NumSubscriptions() == subs {
			return fmt.Errorf("no subscription yet")
		}
		return nil
	})
	if err := r.nc.Flush(); err != nil {
		r.t.Fatal(err)
	}
}

// beat publishes one heartbeat of client id.
func (r *rig) beat(id string) {
	r.t.Helper()
	if err := r.nc.Publish("flmngr.hb."+id, nil); err != nil {
		r.t.Fatal(err)
	}
	if err := r.nc.Flush(); err != nil {
		r.t.Fatal(err)
	}
}

// beating heartbeats client id every timeout/6 until the test ends.
func (r *rig) beating(id string) {
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(timeout / 6)
		defer tick.Stop()
		for {
			_ = r.nc.Publish("flmngr.hb."+id, nil)
			select {
			case <-tick.C:
			case <-quit:
				return
			}
		}
	}()
	r.t.Cleanup(func() { close(quit); <-done })
}

// presenceEvents returns the disconnected and reconnected events of id.
func (r *rig) presenceEvents(id string) []events.Envelope {
	r.t.Helper()
	evs, err := r.log.LoadLatest(context.Background(), events.Client(id), 0)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []events.Envelope
	for _, e := range evs {
		if e.Type == events.ClientDisconnectedV1 || e.Type == events.ClientReconnectedV1 {
			out = append(out, e)
		}
	}
	return out
}

// A client that keeps sending heartbeats is never recorded offline.
func TestHeartbeatsKeepAClientOnline(t *testing.T) {
	r := newRig(t)
	r.register("c")
	r.monitor()
	r.beating("c")
	if err := testkit.Never(4*timeout, func() error {
		if asked := r.cmds.askedFor("c"); len(asked) > 0 {
			return fmt.Errorf("presence recorded %+v", asked)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// A client silent for the timeout is recorded offline once, with the time
// it was last heard, however long it stays silent.
func TestSilenceIsRecordedOnce(t *testing.T) {
	r := newRig(t)
	r.register("c")
	r.monitor()
	beat := time.Now()
	r.beat("c")
	testkit.WaitFor(t, 10*time.Second, "the client recorded offline", func() error {
		if len(r.presenceEvents("c")) == 0 {
			return fmt.Errorf("no presence event")
		}
		return nil
	})
	if err := testkit.Never(4*timeout, func() error {
		if asked := r.cmds.askedFor("c"); len(asked) != 1 {
			return fmt.Errorf("presence asked %d times: %+v", len(asked), asked)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c := r.cmds.askedFor("c")[0]
	if c.Online {
		t.Fatalf("asked %+v, want offline", c)
	}
	// Last seen at the heartbeat, not when the silence was noticed (a
	// timeout later at least).
	if d := c.LastSeen.Sub(beat); d < 0 || d >= timeout {
		t.Fatalf("last seen %s after the heartbeat was sent, want when it was received", d)
	}
	evs := r.presenceEvents("c")
	if len(evs) != 1 || evs[0].Type != events.ClientDisconnectedV1 {
		t.Fatalf("presence events %v, want one disconnection", evs)
	}
}

// A silent client heard again is recorded back online with the length of
// its silence.
func TestAClientHeardAgainIsBack(t *testing.T) {
	r := newRig(t)
	r.register("c")
	r.monitor()
	r.beat("c")
	testkit.WaitFor(t, 10*time.Second, "the client recorded offline", func() error {
		if len(r.presenceEvents("c")) != 1 {
			return fmt.Errorf("presence events %v", r.presenceEvents("c"))
		}
		return nil
	})
	r.beat("c")
	testkit.WaitFor(t, 10*time.Second, "the client recorded back", func() error {
		if evs := r.presenceEvents("c"); len(evs) != 2 || evs[1].Type != events.ClientReconnectedV1 {
			return fmt.Errorf("presence events %v", evs)
		}
		return nil
	})
	back := r.presenceEvents("c")[1].Event.(*events.ClientReconnected)
	if back.Gap < timeout {
		t.Fatalf("gap %s, want at least the timeout %s", back.Gap, timeout)
	}
}

// Clients registered before the monitor started get one timeout to be
// heard from; one the views say is offline is recorded back at its first
// heartbeat.
func TestClientsKnownAtStart(t *testing.T) {
	r := newRig(t)
	r.register("quiet")
	r.register("away")
	if _, err := r.cmds.h.Execute(context.Background(), commands.RecordPresence{ClientID: "away", LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	r.caughtUp()
	start := time.Now()
	r.monitor()
	r.beat("away")
	testkit.WaitFor(t, 10*time.Second, "quiet recorded offline and away back", func() error {
		q, a := r.cmds.askedFor("quiet"), r.cmds.askedFor("away")
		if len(q) != 1 || q[0].Online || len(a) != 1 || !a[0].Online {
			return fmt.Errorf("asked for quiet %+v, for away %+v", q, a)
		}
		return nil
	})
	if q := r.cmds.askedFor("quiet")[0]; q.LastSeen.Before(start) {
		t.Fatalf("quiet last seen %s, before the monitor started (%s)", q.LastSeen, start)
	}
	evs := r.presenceEvents("away")
	if len(evs) != 2 || evs[1].Type != events.ClientReconnectedV1 {
		t.Fatalf("away's presence events %v, want disconnected then reconnected", evs)
	}
}
