package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/api"
)

// proxy forwards TCP connections to a target until it is cut: then it
// drops every connection and refuses new ones, as a dead link would.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go p.serve()
	return p
}

func (p *proxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.cut
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[up] = true, true
		p.mu.Unlock()
		go func() { _, _ = io.Copy(up, c); up.Close(); c.Close() }()
		go func() { _, _ = io.Copy(c, up); up.Close(); c.Close() }()
	}
}

// Cut drops every connection and refuses new ones until Restore.
func (p *proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

const slowClient = `echo '{"type":"info","info":"Started"}'
sleep 12
echo '{"type":"info","info":"Finished"}'
`

// quickClient runs until a file named go appears in its task directory,
// then finishes.
const quickClient = `echo '{"type":"info","info":"Started"}'; while [ ! -e go ]; do sleep 0.05; done; echo '{"type":"info","info":"Finished"}'
`

// shellTask registers, uploads and starts a task whose client is the
// shell script client (its server sleeps), for every camera client; more
// are more flags of task create.
func (s *site) shellTask(id, client string, more ...string) {
	s.t.Helper()
	src := filepath.Join(s.dir, id)
	if err := os.MkdirAll(src, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "client.sh"), []byte(client), 0o644); err != nil {
		s.t.Fatal(err)
	}
	s.cli(append([]string{"task", "create", id, "--host", "127.0.0.1", "--port", "9", "--criterion", `"camera" in sensors`,
		"--server-cmd", "sleep 600", "--client-cmd", "sh client.sh", "--files", "client.sh"}, more...)...)
	s.cli("task", "upload", id, filepath.Join(src, "client.sh"))
	s.cli("task", "start", id)
}

// ranOnce fails unless a client's timeline holds one run of task, begun
// and ended once, never interrupted.
func ranOnce(t *testing.T, tl []projections.TimelineEntry, task string) {
	t.Helper()
	for typ, want := range map[string]int{events.ClientTaskStartedV1: 1, events.ClientTaskRunningV1: 1, events.ClientTaskFinishedV1: 1,
		events.ClientTaskExitedV1: 1, events.ClientTaskInterruptedV1: 0} {
		if n := count(tl, typ, task); n != want {
			t.Fatalf("%d %s events of %s, want %d", n, typ, task, want)
		}
	}
}

// A client agent cut from the cloud for 30 s keeps its task going, keeps
// what it must report, and on reconnect converges: every report arrives
// once, none twice; the cloud marked it offline during the gap (missed
// heartbeats) and online after.
func TestAgentSurvivesA30sDisconnection(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.startUp()
	link := newProxy(t, s.listen)
	s.startAgent("edge", link.URL())

	s.shellTask("slow", slowClient)

	var pid int
	s.waitFor("edge runs slow", time.Minute, func() error {
		tl := s.timeline(projections.TimelineQuery{Client: "edge"})
		if count(tl, events.ClientTaskRunningV1, "slow") == 0 {
			return errorf("edge has not reported slow running")
		}
		u, err := s.api.User(context.Background(), "edge")
		if err != nil || len(u.Running) != 1 {
			return errorf("edge runs %+v (%v)", u.Running, err)
		}
		pid = u.Running[0].PID
		return nil
	})
	st, _ := s.api.Status(context.Background())
	link.Cut()
	cutAt := time.Now()
	t.Logf("link cut with %d events in the log", st.StreamSeq)

	// During the gap: edge's task goes on and finishes, its reports kept;
	// the cloud marks edge offline.
	time.Sleep(3 * time.Second)
	if !alive(pid) {
		t.Fatalf("edge's client process %d died with the link", pid)
	}
	s.waitFor("edge offline", 25*time.Second, func() error {
		u, err := s.api.User(context.Background(), "edge")
		if err != nil || u.Online {
			return errorf("edge online %v (%v)", u.Online, err)
		}
		return nil
	})
	offlineAfter := time.Since(cutAt)
	// The gap lasts 30 s; meanwhile, note when edge's client process
	// ended.
	var diedBy time.Time
	for time.Now().Before(cutAt.Add(30 * time.Second)) {
		if diedBy.IsZero() && !alive(pid) {
			diedBy = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	tl := s.timeline(projections.TimelineQuery{Client: "edge"})
	if n := count(tl, events.ClientTaskFinishedV1, "slow"); n != 0 {
		t.Fatalf("the cloud heard of edge's finish while the link was cut")
	}
	if alive(pid) {
		t.Fatalf("edge's client process %d still runs after 30 s; it should have finished during the gap", pid)
	}

	link.Restore()
	restored := time.Now()
	s.waitFor("edge converges", time.Minute, func() error {
		u, err := s.api.User(context.Background(), "edge")
		if err != nil {
			return err
		}
		tl := s.timeline(projections.TimelineQuery{Client: "edge"})
		if !u.Online || count(tl, events.ClientTaskExitedV1, "slow") == 0 {
			return errorf("edge online %v, %d entries", u.Online, len(tl))
		}
		return nil
	})
	converged := time.Since(restored)
	tl = s.timeline(projections.TimelineQuery{Client: "edge"})
	for _, typ := range []string{events.ClientTaskStartedV1, events.ClientTaskRunningV1, events.ClientTaskFinishedV1, events.ClientTaskExitedV1} {
		if n := count(tl, typ, "slow"); n != 1 {
			t.Fatalf("%d %s events, want exactly 1", n, typ)
		}
	}
	for _, typ := range []string{events.ClientDisconnectedV1, events.ClientReconnectedV1} {
		if n := count(tl, typ, ""); n != 1 {
			t.Fatalf("%d %s events, want exactly 1", n, typ)
		}
	}
	for _, typ := range []string{events.ClientTaskInterruptedV1, events.ClientTaskStoppedV1, events.ClientTaskErroredV1} {
		if n := count(tl, typ, "slow"); n != 0 {
			t.Fatalf("%d %s events: the disconnection disturbed the task", n, typ)
		}
	}
	// The order is the truth: offline, then the finish that happened
	// during the gap, then online again.
	var disc, fin, back *events.Envelope
	for _, e := range s.events(api.EventsRequest{Client: "edge"}) {
		switch e.Type {
		case events.ClientDisconnectedV1:
			disc = &e
		case events.ClientTaskFinishedV1:
			fin = &e
		case events.ClientReconnectedV1:
			back = &e
		}
	}
	if disc == nil || fin == nil || back == nil {
		t.Fatalf("disconnected %v, finished %v, reconnected %v: want all three", disc != nil, fin != nil, back != nil)
	}
	// 1. Offline: recorded during the gap, before the cloud heard of the
	// finish.
	if disc.Time.Before(cutAt) || !disc.Time.Before(restored) || disc.Seq > fin.Seq {
		t.Fatalf("disconnection recorded at %s (seq %d): want during the gap [%s, %s), before the finish (seq %d)",
			disc.Time, disc.Seq, cutAt, restored, fin.Seq)
	}
	// 2. The finish happened during the gap, before its process was seen
	// gone: the agent says when, though the cloud records it only after
	// the link is back.
	if fin.RequestedAt == nil || fin.RequestedAt.Before(cutAt) || fin.RequestedAt.After(diedBy) || fin.Time.Before(restored) {
		t.Fatalf("finish happened at %v, recorded at %s: want it to happen in the gap, between the cut (%s) and the process seen gone (%s), and be recorded after the restore (%s)",
			fin.RequestedAt, fin.Time, cutAt, diedBy, restored)
	}
	// 3. Online again, once the link is back.
	if back.Time.Before(restored) || back.Seq < disc.Seq {
		t.Fatalf("reconnection recorded at %s (seq %d): want after the restore (%s) and the disconnection (seq %d)",
			back.Time, back.Seq, restored, disc.Seq)
	}
	st2, _ := s.api.Status(context.Background())
	t.Logf("offline after %s of silence; link restored after 30 s; converged %s later; %d events in the log (%d more)",
		offlineAfter.Round(10*time.Millisecond), converged.Round(time.Millisecond), st2.StreamSeq, st2.StreamSeq-st.StreamSeq)
}

// An agent killed while cut off loses nothing: what it could not report
// is in its journal, and the agent that starts again delivers it, once,
// before anything else (its finished run is not called interrupted).
func TestReportsSurviveAnAgentKilledWhileCutOff(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.startUp()
	link := newProxy(t, s.listen)
	s.startAgent("edge", link.URL())
	s.shellTask("quick", quickClient)
	var pid int
	s.waitFor("edge runs quick", time.Minute, func() error {
		tl := s.timeline(projections.TimelineQuery{Client: "edge"})
		u, err := s.api.User(context.Background(), "edge")
		if err != nil || len(u.Running) != 1 || count(tl, events.ClientTaskRunningV1, "quick") != 1 {
			return errorf("edge runs %+v (%v)", u.Running, err)
		}
		pid = u.Running[0].PID
		return nil
	})
	link.Cut()
	// The client process finishes while the link is down; then the agent
	// is killed before it could tell anyone.
	if err := os.WriteFile(filepath.Join(s.dir, "agents", "edge", "tasks", "task_quick", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the client process to finish", 10*time.Second, func() error {
		if alive(pid) {
			return errorf("still running")
		}
		return nil
	})
	s.waitFor("the agent to journal the exit", 10*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(s.dir, "agents", "edge", "outbox.jsonl"))
		if !bytes.Contains(b, []byte(`"kind":"exited"`)) {
			return errorf("no exit in the journal yet")
		}
		return nil
	})
	s.signalAgent("edge", syscall.SIGKILL)
	link.Restore()
	restarted := time.Now()
	s.startAgent("edge", link.URL())
	s.waitFor("edge's reports", time.Minute, func() error {
		tl := s.timeline(projections.TimelineQuery{Client: "edge"})
		if count(tl, events.ClientTaskExitedV1, "quick") == 0 {
			return errorf("no exit of quick yet")
		}
		return nil
	})
	took := time.Since(restarted)
	ranOnce(t, s.timeline(projections.TimelineQuery{Client: "edge"}), "quick")
	t.Logf("the reports of the killed agent arrived %s after it started again", took.Round(time.Millisecond))
}

// An edge site runs a leaf node in its agent: the agent's identity holds
// over the leaf link (its permissions apply there as on a direct
// connection), it runs a task through it, and a cut of the site's link
// leaves its own connection up and loses no report, even when the agent
// is killed meanwhile: they wait in the leaf node's own JetStream.
func TestEdgeLeafNode(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.upArgs = []string{"--leafnodes", "127.0.0.1:0"}
	s.startUp()
	out := s.upOut.String()
	i := strings.Index(out, "leaf nodes: ")
	if i < 0 {
		t.Fatal("flmngr up printed no leaf node address")
	}
	leafURL := strings.Fields(out[i+len("leaf nodes: "):])[0]
	link := newProxy(t, strings.TrimPrefix(leafURL, "nats-leaf://"))
	s.agentArgs = []string{"--leaf", strings.Replace(link.URL(), "nats://", "nats-leaf://", 1)}
	s.startAgent("edge", "nats://unused:1")

	s.shellTask("quick", quickClient)
	s.waitFor("edge runs quick through its leaf node", time.Minute, func() error {
		tl := s.timeline(projections.TimelineQuery{Client: "edge"})
		if count(tl, events.ClientTaskRunningV1, "quick") != 1 {
			return errorf("not yet running")
		}
		return nil
	})
	link.Cut()
	if err := os.WriteFile(filepath.Join(s.dir, "agents", "edge", "tasks", "task_quick", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.waitFor("the agent to keep the exit", 10*time.Second, func() error {
		if !strings.Contains(s.agentOut["edge"].String(), `msg="task exited" component=agent client_id=edge task_id=quick`) {
			return errorf("not yet")
		}
		return nil
	})
	if n := count(s.timeline(projections.TimelineQuery{Client: "edge"}), events.ClientTaskFinishedV1, "quick"); n != 0 {
		t.Fatal("the cloud heard of the finish while the link was cut")
	}
	// The agent dies with its reports undelivered and starts again, the
	// link still down: its reports wait in its leaf node's JetStream.
	s.signalAgent("edge", syscall.SIGKILL)
	s.startAgent("edge", "nats://unused:1")
	work := filepath.Join(s.dir, "agents", "edge")
	if _, err := os.Stat(filepath.Join(work, "outbox.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an edge agent with a leaf node journals in outbox.jsonl (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(work, "leaf", "jetstream")); err != nil {
		t.Fatalf("no leaf node JetStream in the work directory: %v", err)
	}
	time.Sleep(time.Second)
	link.Restore()
	restored := time.Now()
	s.waitFor("edge's reports after the link is back", time.Minute, func() error {
		tl := s.timeline(projections.TimelineQuery{Client: "edge"})
		if count(tl, events.ClientTaskExitedV1, "quick") != 1 || count(tl, events.ClientTaskFinishedV1, "quick") != 1 {
			return errorf("not converged")
		}
		return nil
	})
	took := time.Since(restored)
	ranOnce(t, s.timeline(projections.TimelineQuery{Client: "edge"}), "quick")
	t.Logf("through the leaf node, reports kept in its JetStream across an agent killed while cut off: converged %s after the link came back",
		took.Round(time.Millisecond))
	if strings.Contains(s.agentOut["edge"].String(), "level=ERROR") {
		t.Fatalf("the agent logged errors:\n%s", s.agentOut["edge"].String())
	}
}
