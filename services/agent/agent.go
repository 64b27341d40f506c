package agent

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/nats-io/nuid"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/logs"
	"github.com/flmngr/flmngr/taskd"
)

// Policies.
const (
	PolicyOne = "one"
	PolicyAll = "all"
)

// HeartbeatSubject is where a client's heartbeats go.
func HeartbeatSubject(clientID string) string { return "flmngr.hb." + clientID }

// Config configures an agent.
type Config struct {
	ClientID string
	// Info are the attributes given on the command line.
	Info commands.ClientInfo
	// InfoFile, when set, is a JSON file of attributes (the fields of
	// `flmngr user report`) that override Info; the agent reports them
	// again whenever the file changes.
	InfoFile string
	// WorkDir holds tasks/task_<id> for every task the client runs.
	WorkDir string
	// Policy is "one" (default) or "all"; MaxTasks bounds "all" (0: no
	// bound).
	Policy   string
	MaxTasks int
	// Heartbeat is the interval between heartbeats (default 5s).
	Heartbeat time.Duration
	// Grace is how long a stopped client process may take before SIGKILL
	// (default 5s).
	Grace time.Duration
	// Drain is how long Run, when it stops, waits for the cloud to take
	// the reports still waiting (default 5s); what is left stays in the
	// journal for the next start.
	Drain time.Duration
	// Journal, when set, is the JetStream of the site's own leaf node
	// (StartLeaf with a StoreDir): the reports that wait for the cloud
	// are kept in a stream there instead of in WorkDir/outbox.jsonl.
	Journal jetstream.JetStream
	// Trust, when set, are the public keys (NKeys) of the operators whose
	// signatures the agent accepts: it runs only tasks one of them
	// signed, and records a refusal for the others.
	Trust []string
	// MaxLimits is the site's ceiling: no task's client process gets more
	// than it, whatever the task's own limits say (taskd.Limits.Min); a
	// zero field is no ceiling.
	MaxLimits taskd.Limits
	// Approval is ApprovalAny (default), ApprovalManual or
	// ApprovalTrusted: whether a task waits for the site's approval in
	// WorkDir's approvals file before it runs (see approvals.go).
	Approval string
	// Output, when set, gets every line a client process prints.
	Output func(task, run string, m taskd.Message)
	Logger *slog.Logger

	// Set by load tests only (export_test.go): simulate follows offers
	// without downloading or running anything; onOffers, when set, is
	// told about every offers event the agent applies.
	simulate bool
	onOffers func(e events.Envelope)
}

// Validate reports whether the configuration is usable.
func (c Config) Validate() error {
	if !events.ValidID(c.ClientID) {
		return fmt.Errorf("client id %q must be 1-64 letters, digits, '_' or '-'", c.ClientID)
	}
	if c.Policy != "" && c.Policy != PolicyOne && c.Policy != PolicyAll {
		return fmt.Errorf("policy %q: want one or all", c.Policy)
	}
	if c.MaxTasks < 0 {
		return errors.New("max tasks must not be negative")
	}
	for _, k := range c.Trust {
		if _, err := nkeys.FromPublicKey(k); err != nil {
			return fmt.Errorf("trusted key %q is not a public NKey: %v", k, err)
		}
	}
	if err := c.MaxLimits.Validate(); err != nil {
		return fmt.Errorf("max limits: %w", err)
	}
	switch c.Approval {
	case "", ApprovalAny, ApprovalManual:
	case ApprovalTrusted:
		if len(c.Trust) == 0 {
			return errors.New("approval trusted needs the keys to trust (--trust)")
		}
	default:
		return fmt.Errorf("approval %q: want any, manual or trusted", c.Approval)
	}
	if c.WorkDir == "" && !c.simulate {
		return errors.New("a work directory is required")
	}
	return nil
}

func (c Config) withDefaults() Config {
	c.Policy = cmp.Or(c.Policy, PolicyOne)
	if c.Policy == PolicyOne {
		c.MaxTasks = 1
	}
	c.Heartbeat = cmp.Or(c.Heartbeat, 5*time.Second)
	c.Grace = cmp.Or(c.Grace, 5*time.Second)
	c.Drain = cmp.Or(c.Drain, 5*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Output == nil {
		c.Output = func(string, string, taskd.Message) {}
	}
	return c
}

// key identifies what a quarantine covers.
type key struct {
	task, run string
	spec      uint64
}

// Agent is a client agent.
type Agent struct {
	nc     *nats.Conn
	conn   *api.ClientConn
	outbox *outbox
	cfg    Config

	post chan func() // work for the loop goroutine

	// Owned by the loop goroutine.
	offers      []events.Offer
	offersSeq   uint64
	finished    map[string]bool // tasks the last offers withdrew because they finished
	quarantined map[key]bool
	done        map[commands.TaskRun]bool
	procs       map[commands.TaskRun]*clientRun
	// Local approval (approval.go).
	approvals      Approvals
	awaiting       map[commands.TaskRun]awaiting
	pendingWritten []byte
	stopping       bool
	runs           sync.WaitGroup
}

// New returns an agent over nc; Run runs it.
func New(nc *nats.Conn, cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if want := auth.InboxPrefix(cfg.ClientID); nc.Opts.InboxPrefix != want {
		// The cloud answers a client only on its own inbox prefix.
		return nil, fmt.Errorf("agent: the connection's inbox prefix is %q, not %q (connect with agent.Dial, or nats.CustomInboxPrefix(auth.InboxPrefix(id)))", nc.Opts.InboxPrefix, want)
	}
	conn := api.NewClient(nc, 15*time.Second).WithSource(commands.AgentSource(cfg.ClientID)).ForClient(cfg.ClientID)
	return &Agent{nc: nc, conn: conn, outbox: newOutbox(sendTo(conn), sendManyTo(conn), cfg.Logger),
		cfg: cfg, post: make(chan func(), 256),
		quarantined: map[key]bool{}, done: map[commands.TaskRun]bool{}, procs: map[commands.TaskRun]*clientRun{},
		awaiting: map[commands.TaskRun]awaiting{}}, nil
}

// JournalPlace says where the reports that wait are kept.
func (a *Agent) JournalPlace() string {
	if a.cfg.Journal != nil {
		return "the leaf node's stream FLMNGR_OUTBOX_" + a.cfg.ClientID
	}
	return filepath.Join(a.cfg.WorkDir, "outbox.jsonl")
}

// Pending is how many reports wait for the cloud to acknowledge them.
func (a *Agent) Pending() int { return a.outbox.Len() }

// Drained is closed once no report waits for the cloud.
func (a *Agent) Drained() <-chan struct{} { return a.outbox.drained() }

// Run registers the client and runs its tasks until ctx ends; it then
// stops every task process and records them as interrupted.
func (a *Agent) Run(ctx context.Context) error {
	if !a.cfg.simulate {
		sink, output := logs.ClientSink(a.nc, a.cfg.ClientID), a.cfg.Output
		a.cfg.Output = func(task, run string, m taskd.Message) { sink(task, run, m); output(task, run, m) }
	}
	info, infoStamp, err := a.readInfo()
	if err != nil {
		return err
	}
	left := 0
	if !a.cfg.simulate {
		if err := os.MkdirAll(a.cfg.WorkDir, 0o700); err != nil {
			return fmt.Errorf("agent: work directory: %w", err)
		}
		var j journal = newFileJournal(filepath.Join(a.cfg.WorkDir, "outbox.jsonl"))
		if a.cfg.Journal != nil {
			j = newStreamJournal(a.cfg.Journal, a.cfg.ClientID)
		}
		if left, err = a.outbox.useJournal(j); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		defer a.outbox.close()
		if left > 0 {
			a.cfg.Logger.Info("reports of an earlier life to deliver", "reports", left)
		}
	}
	reconnected := make(chan struct{}, 1)
	outboxDone := make(chan struct{})
	outboxCtx, stopOutbox := context.WithCancel(context.WithoutCancel(ctx))
	go func() { defer close(outboxDone); a.outbox.run(outboxCtx, reconnected) }()
	defer func() {
		// What the shutdown reported goes out if the cloud is there.
		select {
		case <-a.outbox.drained():
		case <-time.After(a.cfg.Drain):
			a.cfg.Logger.Warn("reports not delivered at shutdown; they wait in the journal", "pending", a.outbox.Len(), "journal", a.JournalPlace())
		}
		stopOutbox()
		<-outboxDone
	}()
	// The first report is sent at once: bad attributes stop the agent
	// with the cloud's reason rather than a warning in the log.
	register := pending{Key: "agent-" + nuid.Next(), At: time.Now(), Info: &commands.ReportClientInfo{ClientInfo: info, Register: true}}
	if err := a.untilReachable(ctx, "report attributes", func() error { return sendTo(a.conn)(ctx, register) }); err != nil {
		return err
	}
	if left > 0 {
		// The history restore reads must include what the earlier life
		// reported (a run it finished is not to be called interrupted).
		select {
		case <-a.outbox.drained():
		case <-ctx.Done():
			return nil
		}
	}
	if err := a.restore(ctx); err != nil {
		return err
	}
	var approvalsChanged <-chan struct{}
	if a.approving() {
		changed, stop, err := a.openApprovals()
		if err != nil {
			return err
		}
		defer stop()
		approvalsChanged = changed
	}
	sub, err := a.nc.Subscribe(a.offersLive(), func(m *nats.Msg) {
		live, err := eventlog.ParseLive(m)
		if err != nil {
			a.cfg.Logger.Warn("bad live offers", "err", err)
			return
		}
		a.send(ctx, func() { a.onLive(ctx, live) })
	})
	if err != nil {
		return fmt.Errorf("agent: subscribe to offers: %w", err)
	}
	defer sub.Unsubscribe()
	status := a.nc.StatusChanged(nats.CONNECTED)
	defer a.nc.RemoveStatusListener(status)
	closed := a.nc.StatusChanged(nats.CLOSED)
	defer a.nc.RemoveStatusListener(closed)
	a.resync(ctx, 0)

	heartbeat := time.NewTicker(a.cfg.Heartbeat)
	defer heartbeat.Stop()
	a.beat()
	var watch <-chan time.Time
	if a.cfg.InfoFile != "" {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		watch = t.C
	}
	a.cfg.Logger.Info("agent up", "client_id", a.cfg.ClientID, "policy", a.cfg.Policy)
	for {
		select {
		case <-ctx.Done():
			a.shutdown()
			return nil
		case <-closed:
			// The connection gave up for good: the server refuses this
			// client (its key was revoked, say).
			a.shutdown()
			err := a.nc.LastError()
			if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthRevoked) || errors.Is(err, nats.ErrAuthExpired) {
				return fmt.Errorf("agent: the cloud refuses this client's credentials (revoked?): %w", err)
			}
			return fmt.Errorf("agent: the connection to the cloud was closed: %v", err)
		case fn := <-a.post:
			fn()
		case <-status:
			select {
			case reconnected <- struct{}{}:
			default:
			}
			a.resync(ctx, 0) // reconnected: catch up on offers missed meanwhile
		case <-heartbeat.C:
			a.beat()
		case <-approvalsChanged:
			a.reloadApprovals(ctx)
		case <-watch:
			info, stamp, err := a.readInfo()
			if err != nil {
				a.cfg.Logger.Warn("attributes file", "err", err)
				continue
			}
			if stamp != infoStamp {
				infoStamp = stamp
				a.outbox.add(pending{Info: &commands.ReportClientInfo{ClientInfo: info}})
			}
		}
	}
}

// send hands work to the loop goroutine.
func (a *Agent) send(ctx context.Context, fn func()) {
	select {
	case a.post <- fn:
	case <-ctx.Done():
	}
}

// offersLive is where the client's offers events are republished.
func (a *Agent) offersLive() string {
	_, name, _ := strings.Cut(events.ClientOffersChangedV1, ".")
	return eventlog.Config{}.Defaults().LivePrefix + "." + events.KindClient + "." + a.cfg.ClientID + "." + name
}

// readInfo merges the attributes file over the flags and returns a stamp
// that changes when the file does.
func (a *Agent) readInfo() (commands.ClientInfo, string, error) {
	info := a.cfg.Info
	if a.cfg.InfoFile == "" {
		return info, "", nil
	}
	fi, err := os.Stat(a.cfg.InfoFile)
	if err != nil {
		return info, "", fmt.Errorf("attributes file: %w", err)
	}
	b, err := os.ReadFile(a.cfg.InfoFile)
	if err != nil {
		return info, "", fmt.Errorf("attributes file: %w", err)
	}
	var file commands.ClientInfo
	if err := json.Unmarshal(b, &file); err != nil {
		return info, "", fmt.Errorf("attributes file %s: %w", a.cfg.InfoFile, err)
	}
	if file.Sensors != nil {
		info.Sensors = file.Sensors
	}
	if file.DataQnt != nil {
		info.DataQnt = file.DataQnt
	}
	if file.AvgAccContrib != nil {
		info.AvgAccContrib = file.AvgAccContrib
	}
	if file.AvgDisconnectionPerRound != nil {
		info.AvgDisconnectionPerRound = file.AvgDisconnectionPerRound
	}
	if file.Extra != nil {
		info.Extra = file.Extra
	}
	return info, fi.ModTime().String() + "/" + strconv.FormatInt(fi.Size(), 10), nil
}

// restore re-derives the client's state from its events: quarantines,
// finished runs, and runs an earlier life left running (their processes
// died with it, so they are recorded as interrupted).
func (a *Agent) restore(ctx context.Context) error {
	if !a.cfg.simulate {
		// Client processes an earlier life left (it was killed, say) die
		// before anything else: no task runs twice at once.
		if err := taskd.EndEarlierLife(a.pidDir(), "agent", a.cfg.Logger); err != nil {
			return err
		}
	}
	var evs []events.Envelope
	err := a.untilReachable(ctx, "load history", func() (err error) {
		evs, err = a.conn.History(ctx, 0)
		return err
	})
	if err != nil {
		return err
	}
	var st commands.ClientState
	for _, e := range evs {
		st.Apply(e)
		if e.Type == events.ClientOffersChangedV1 {
			a.offersSeq = e.Seq
		}
	}
	for _, q := range st.Quarantined {
		a.quarantined[key{q.TaskID, q.Run, q.SpecSeq}] = true
	}
	for _, d := range st.Done {
		a.done[d] = true
	}
	for _, w := range st.Awaiting {
		a.awaiting[w.TaskRun] = awaiting{statement: w.Statement, since: w.Since}
	}
	a.offers = st.Offers
	for _, r := range st.Running {
		a.cfg.Logger.Warn("task of an earlier life is gone", "task_id", r.TaskID, "run", r.Run)
		a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskInterrupted, TaskID: r.TaskID, Run: r.Run, Reason: "the agent restarted; its process is gone"})
	}
	return nil
}

// pidDir holds the pid files of the client processes.
func (a *Agent) pidDir() string { return filepath.Join(a.cfg.WorkDir, "run") }

// untilReachable calls fn until the cloud answers it, backing off while
// the cloud cannot be reached.
func (a *Agent) untilReachable(ctx context.Context, what string, fn func() error) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := fn()
		if err == nil {
			return nil
		}
		if k := fault.KindOf(err); k != fault.KindUnavailable && k != fault.KindRateLimited {
			return fmt.Errorf("agent: %s: %w", what, err)
		}
		a.cfg.Logger.Warn("waiting for the cloud", "step", what, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent: %s: %w", what, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// resync reads the client's last offers from the log, at least up to
// minSeq, for when live events may have been missed.
func (a *Agent) resync(ctx context.Context, minSeq uint64) {
	e, ok, err := a.conn.LastOffers(ctx, minSeq)
	if err != nil {
		a.cfg.Logger.Warn("resync offers", "err", err)
		return
	}
	if ok && e.Seq > a.offersSeq {
		a.applyOffers(ctx, e)
	} else {
		a.reconcile(ctx)
	}
}

// onLive applies a live offers event, or resyncs when one was missed.
func (a *Agent) onLive(ctx context.Context, l eventlog.Live) {
	switch {
	case l.Event.Seq <= a.offersSeq:
	case l.PrevSeq != a.offersSeq && l.PrevSeq != 0:
		a.resync(ctx, l.Event.Seq)
	default:
		a.applyOffers(ctx, l.Event)
	}
}

func (a *Agent) applyOffers(ctx context.Context, e events.Envelope) {
	p, ok := e.Event.(*events.ClientOffersChanged)
	if !ok {
		return
	}
	a.offers, a.offersSeq = p.Offers, e.Seq
	a.finished = map[string]bool{}
	for _, id := range p.Finished {
		a.finished[id] = true
	}
	if a.cfg.onOffers != nil {
		a.cfg.onOffers(e)
	}
	a.reconcile(ctx)
}

// report records what happened to a task on this client.
// It goes out through the outbox: in order, once, whenever the cloud can
// be reached.
func (a *Agent) report(_ context.Context, r commands.ReportClientTask) {
	a.outbox.add(pending{Task: &r})
}

func (a *Agent) beat() {
	running := make([]commands.TaskRun, 0, len(a.procs))
	for k := range a.procs {
		running = append(running, k)
	}
	b, _ := json.Marshal(map[string]any{"running": running})
	if err := a.nc.Publish(HeartbeatSubject(a.cfg.ClientID), b); err != nil {
		a.cfg.Logger.Debug("heartbeat", "err", err)
	}
}
