package agent_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/agent"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/testkit"
)

// site is one cloud in this process and a client agent under test, with
// every event of the log collected.
type site struct {
	t       *testing.T
	dir     string
	cloud   *cloud.Cloud
	api     *api.Client
	workDir string
	mu      sync.Mutex
	log     []events.Envelope
}

func newSite(t *testing.T) *site {
	t.Helper()
	dir := t.TempDir()
	c, err := cloud.Open(context.Background(), cloud.Config{DataDir: filepath.Join(dir, "cloud"), Listen: "127.0.0.1:0", Name: "approval", Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	s := &site{t: t, dir: dir, cloud: c, api: api.NewClient(c.Conn(), 10*time.Second), workDir: filepath.Join(dir, "agent")}
	ctx, cancel := context.WithCancel(context.Background())
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		_ = c.Log.Follow(ctx, eventlog.FollowOptions{From: 1}, func(e events.Envelope) error {
			s.mu.Lock()
			s.log = append(s.log, e)
			s.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); <-followed })
	return s
}

// run runs an agent of client c1 until the test ends; it returns Run's
// error channel.
func (s *site) run(cfg agent.Config) <-chan error {
	s.t.Helper()
	nc, err := s.cloud.ConnectClient(context.Background(), "c1")
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.ClientID, cfg.WorkDir, cfg.Grace = "c1", s.workDir, time.Second
	a, err := agent.New(nc, cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, stopped := make(chan error, 1), make(chan struct{})
	go func() { done <- a.Run(ctx); close(stopped) }()
	s.t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(20 * time.Second):
			s.t.Error("the agent did not stop")
		}
		nc.Close()
	})
	return done
}

// task creates a task whose client process writes the time it was
// spawned (Unix ns) to the file the task's marker names, then sleeps;
// it uploads client.py with the given content.
func (s *site) task(id, content string) {
	s.t.Helper()
	ctx := context.Background()
	script := fmt.Sprintf(`date +%%s%%N > %s.tmp && mv %s.tmp %s; exec sleep 600`, s.marker(id), s.marker(id), s.marker(id))
	if _, err := s.api.CreateTask(ctx, commands.CreateTask{TaskID: id, Host: "localhost", Port: 8080,
		ServerCommand: []string{"sleep", "600"}, ClientCommand: []string{"sh", "-c", script}}); err != nil {
		s.t.Fatal(err)
	}
	s.upload(id, content)
}

func (s *site) upload(id, content string) {
	s.t.Helper()
	put := api.PutFunc(func(ctx context.Context, task, name string, r io.Reader) (events.FileRef, error) {
		return s.api.UploadFile(ctx, task, name, r, nil)
	})
	file := api.TaskFile{Name: "client.py", Open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }}
	if _, _, err := s.api.StoreTaskFiles(context.Background(), put, id, []api.TaskFile{file}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) marker(id string) string { return filepath.Join(s.dir, "spawned-"+id) }

// spawnedAt is when the task's client process was spawned (zero: not).
func (s *site) spawnedAt(id string) time.Time {
	b, err := os.ReadFile(s.marker(id))
	if err != nil {
		return time.Time{}
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		s.t.Fatalf("marker of %s: %v", id, err)
	}
	return time.Unix(0, ns)
}

func (s *site) start(id string) {
	s.t.Helper()
	if _, err := s.api.StartTask(context.Background(), commands.StartTask{TaskID: id}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *site) stop(id string) {
	s.t.Helper()
	if _, err := s.api.StopTask(context.Background(), id); err != nil {
		s.t.Fatal(err)
	}
	s.waitEvent(events.ClientTaskStoppedV1, id, 1)
	_ = os.Remove(s.marker(id))
}

// count counts the client events of a type about a task.
func (s *site) count(typ, task string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.log {
		if t, _, ok := events.TaskRunOf(e.Event); ok && e.Type == typ && t == task {
			n++
		}
	}
	return n
}

// last returns the last client event of a type about a task.
func (s *site) last(typ, task string) events.Payload {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.log) - 1; i >= 0; i-- {
		if t, _, ok := events.TaskRunOf(s.log[i].Event); ok && s.log[i].Type == typ && t == task {
			return s.log[i].Event
		}
	}
	return nil
}

func (s *site) waitEvent(typ, task string, n int) {
	s.t.Helper()
	testkit.WaitFor(s.t, 30*time.Second, fmt.Sprintf("%d %s of %s", n, typ, task), func() error {
		if got := s.count(typ, task); got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
}

// pending returns what the agent holds back for the task.
func (s *site) pending(id string) agent.Pending {
	s.t.Helper()
	var out agent.Pending
	testkit.WaitFor(s.t, 30*time.Second, "the pending file to list "+id, func() error {
		p, err := agent.ReadPending(s.workDir)
		if err != nil {
			return err
		}
		for _, x := range p.Pending {
			if x.TaskID == id {
				out = x
				return nil
			}
		}
		return errors.New("not listed")
	})
	return out
}

// approve writes the site's approval of what the agent holds back for
// the task and returns when it was written.
func (s *site) approve(p agent.Pending) time.Time {
	s.t.Helper()
	as, err := agent.ReadApprovals(s.workDir)
	if err != nil {
		s.t.Fatal(err)
	}
	as.Set(agent.Approval{TaskID: p.TaskID, Statement: p.Statement, Files: p.Files, At: time.Now()})
	at := time.Now()
	if err := agent.WriteApprovals(s.workDir, as); err != nil {
		s.t.Fatal(err)
	}
	return at
}

func (s *site) revoke(id string) {
	s.t.Helper()
	as, err := agent.ReadApprovals(s.workDir)
	if err != nil {
		s.t.Fatal(err)
	}
	if !as.Revoke(id) {
		s.t.Fatalf("no approval of %s to revoke", id)
	}
	if err := agent.WriteApprovals(s.workDir, as); err != nil {
		s.t.Fatal(err)
	}
}

// held asserts that nothing of the task was spawned: no started event
// and no marker, a moment after the agent said it holds it back.
func (s *site) held(id string, started int) {
	s.t.Helper()
	time.Sleep(300 * time.Millisecond) // give a wrong spawn the time to show
	if n := s.count(events.ClientTaskStartedV1, id); n != started {
		s.t.Fatalf("task %s was started %d times, want %d, though it awaits approval", id, n, started)
	}
	if !s.spawnedAt(id).IsZero() {
		s.t.Fatalf("task %s was spawned though it awaits approval", id)
	}
}

// Under --approval manual a task waits until the site approves its exact
// statement; it then runs at once; a changed file needs a new approval;
// a revoked approval stops the run, which waits again.
func TestManualApprovalHoldsThenRuns(t *testing.T) {
	s := newSite(t)
	s.run(agent.Config{Approval: agent.ApprovalManual})
	s.task("T", "print('v1')\n")
	s.start("T")
	s.waitEvent(events.ClientTaskAwaitingApprovalV1, "T", 1)
	p := s.pending("T")
	w := s.last(events.ClientTaskAwaitingApprovalV1, "T").(*events.ClientTaskAwaitingApproval)
	if w.Statement != p.Statement || len(w.Files) != 1 || w.Files[0].Name != "client.py" {
		t.Fatalf("awaiting event %+v does not match the pending file %+v", w, p)
	}
	s.held("T", 0)
	u, err := s.api.User(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := u.AwaitingApproval("T", p.Run); !ok || a.Statement != p.Statement {
		t.Fatalf("the client view does not show T awaiting approval: %+v", u.Awaiting)
	}
	if len(u.Quarantined) != 0 {
		t.Fatalf("a task awaiting approval was quarantined: %+v", u.Quarantined)
	}

	approved := s.approve(p)
	testkit.WaitFor(t, 10*time.Second, "T spawned after its approval", func() error {
		if s.spawnedAt("T").IsZero() {
			return errors.New("not yet")
		}
		return nil
	})
	latency := s.spawnedAt("T").Sub(approved)
	t.Logf("approval written → client process spawned: %s", latency)
	if latency > 5*time.Second {
		t.Fatalf("the approved task took %s to spawn", latency)
	}
	s.waitEvent(events.ClientTaskApprovedV1, "T", 1)
	testkit.WaitFor(t, 10*time.Second, "the view to drop the wait", func() error {
		u, err := s.api.User(context.Background(), "c1")
		if err != nil {
			return err
		}
		if len(u.Awaiting) != 0 {
			return fmt.Errorf("still awaiting: %+v", u.Awaiting)
		}
		return nil
	})

	// A changed file is another statement: the next run waits again.
	s.stop("T")
	s.upload("T", "print('v2')\n")
	s.start("T")
	s.waitEvent(events.ClientTaskAwaitingApprovalV1, "T", 2)
	p2 := s.pending("T")
	if p2.Statement == p.Statement {
		t.Fatal("a changed file kept the statement")
	}
	s.held("T", 1)
	s.approve(p2)
	s.waitEvent(events.ClientTaskStartedV1, "T", 2)

	// Revoking stops the run; it then waits for approval again.
	s.revoke("T")
	s.waitEvent(events.ClientTaskStoppedV1, "T", 2)
	if r := s.last(events.ClientTaskStoppedV1, "T").(*events.ClientTaskStopped).Reason; !strings.Contains(r, "revoked") {
		t.Fatalf("stopped for %q", r)
	}
	s.waitEvent(events.ClientTaskAwaitingApprovalV1, "T", 3)
	if n := s.count(events.ClientTaskQuarantinedV1, "T"); n != 0 {
		t.Fatalf("a revoked task was quarantined")
	}
}

// Under the default (any) a task runs as offered: nothing waits.
func TestApprovalAnyRunsAsOffered(t *testing.T) {
	s := newSite(t)
	s.run(agent.Config{})
	s.task("T", "print('v1')\n")
	s.start("T")
	s.waitEvent(events.ClientTaskStartedV1, "T", 1)
	if n := s.count(events.ClientTaskAwaitingApprovalV1, "T"); n != 0 {
		t.Fatalf("a task waited for approval under approval any")
	}
	if _, err := os.Stat(filepath.Join(s.workDir, agent.PendingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("approval any wrote a pending file: %v", err)
	}
}

// Under --approval trusted a task a trusted key signed runs without
// asking; an unsigned one waits for approval (instead of being refused)
// and the agent runs the signed one meanwhile; once approved, the
// unsigned one runs. Under manual with --trust, the unsigned one is
// refused outright, not held.
func TestTrustedApproval(t *testing.T) {
	kp, _ := nkeys.CreateOperator()
	pub, _ := kp.PublicKey()
	t.Run("trusted", func(t *testing.T) {
		s := newSite(t)
		s.run(agent.Config{Approval: agent.ApprovalTrusted, Trust: []string{pub}, Policy: agent.PolicyOne})
		s.task("U", "print('unsigned')\n")
		s.task("S", "print('signed')\n")
		s.sign("S", kp)
		s.start("U")
		s.waitEvent(events.ClientTaskAwaitingApprovalV1, "U", 1)
		s.start("S")
		s.waitEvent(events.ClientTaskStartedV1, "S", 1) // failover past the held task
		if n := s.count(events.ClientTaskAwaitingApprovalV1, "S"); n != 0 {
			t.Fatal("a task signed by a trusted key waited for approval")
		}
		s.held("U", 0)
		if n := s.count(events.ClientTaskRefusedV1, "U"); n != 0 {
			t.Fatal("under approval trusted an unsigned task was refused, not held")
		}
		s.approve(s.pending("U"))
		s.stop("S") // the one slot frees: the approved task runs
		s.waitEvent(events.ClientTaskStartedV1, "U", 1)
		if n := s.count(events.ClientTaskRefusedV1, "U"); n != 0 {
			t.Fatal("the approved unsigned task was refused")
		}
	})
	t.Run("manual_with_trust", func(t *testing.T) {
		s := newSite(t)
		s.run(agent.Config{Approval: agent.ApprovalManual, Trust: []string{pub}})
		s.task("U", "print('unsigned')\n")
		s.task("S", "print('signed')\n")
		s.sign("S", kp)
		s.start("U")
		s.waitEvent(events.ClientTaskRefusedV1, "U", 1)
		s.start("S")
		s.waitEvent(events.ClientTaskAwaitingApprovalV1, "S", 1)
		if w := s.last(events.ClientTaskAwaitingApprovalV1, "S").(*events.ClientTaskAwaitingApproval); len(w.Signers) != 1 || w.Signers[0] != pub {
			t.Fatalf("signers %v, want [%s]", w.Signers, pub)
		}
		if n := s.count(events.ClientTaskAwaitingApprovalV1, "U"); n != 0 {
			t.Fatal("an untrusted task was held for approval under manual, not refused")
		}
		s.held("S", 0)
		s.approve(s.pending("S"))
		s.waitEvent(events.ClientTaskStartedV1, "S", 1)
	})
}

func (s *site) sign(id string, kp nkeys.KeyPair) {
	s.t.Helper()
	ctx := context.Background()
	tv, err := s.api.Task(ctx, id)
	if err != nil {
		s.t.Fatal(err)
	}
	sig, err := events.SignTask(kp, tv.Statement(id))
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.api.SignTask(ctx, commands.SignTask{TaskID: id, TaskSignature: sig}); err != nil {
		s.t.Fatal(err)
	}
}

// A corrupted approvals file stops the agent with a clear error before
// anything runs; one corrupted while the agent runs approves nothing: the
// approved run stops and nothing starts.
func TestCorruptedApprovals(t *testing.T) {
	t.Run("at_start", func(t *testing.T) {
		s := newSite(t)
		if err := os.MkdirAll(s.workDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.workDir, agent.ApprovalsFile), []byte(`{"approvals":[{"task_id":"../x"`), 0o600); err != nil {
			t.Fatal(err)
		}
		s.task("T", "print('v1')\n")
		s.start("T")
		select {
		case err := <-s.run(agent.Config{Approval: agent.ApprovalManual}):
			if err == nil || !strings.Contains(err.Error(), "not a valid approvals file") {
				t.Fatalf("Run: %v, want a clear error about the approvals file", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the agent runs over a corrupted approvals file")
		}
		if n := s.count(events.ClientTaskStartedV1, "T"); n != 0 || !s.spawnedAt("T").IsZero() {
			t.Fatal("a task ran over a corrupted approvals file")
		}
	})
	t.Run("bad_task_id", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, agent.ApprovalsFile), []byte(`{"approvals":[{"task_id":"../../etc","statement_sha256":"`+strings.Repeat("a", 64)+`"}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := agent.ReadApprovals(dir); err == nil || !strings.Contains(err.Error(), `task id "../../etc"`) {
			t.Fatalf("ReadApprovals: %v", err)
		}
	})
	t.Run("while_running", func(t *testing.T) {
		s := newSite(t)
		s.run(agent.Config{Approval: agent.ApprovalManual})
		s.task("T", "print('v1')\n")
		s.start("T")
		s.waitEvent(events.ClientTaskAwaitingApprovalV1, "T", 1)
		s.approve(s.pending("T"))
		s.waitEvent(events.ClientTaskStartedV1, "T", 1)
		if err := os.WriteFile(filepath.Join(s.workDir, agent.ApprovalsFile), []byte("{not json"), 0o600); err != nil {
			t.Fatal(err)
		}
		s.waitEvent(events.ClientTaskStoppedV1, "T", 1)
		_ = os.Remove(s.marker("T")) // the approved run's
		s.waitEvent(events.ClientTaskAwaitingApprovalV1, "T", 2)
		s.held("T", 1)
	})
}
