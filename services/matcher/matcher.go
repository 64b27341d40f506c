package matcher

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
)

// Executor runs commands.
type Executor interface {
	Execute(ctx context.Context, cmd commands.Command) (commands.Result, error)
}

// EachExecutor runs many commands on different aggregates at once, their
// appends pipelined (commands.Handler.ExecuteEach).
type EachExecutor interface {
	ExecuteEach(ctx context.Context, cmds []commands.Command) ([]commands.Result, []error)
}

// Config configures a matcher.
type Config struct {
	// Workers record offers concurrently, each a batch at a time
	// (default 4).
	Workers int
	// Batch bounds the clients whose offers one worker records at once
	// (default 1024).
	Batch  int
	Logger *slog.Logger
}

// Matcher keeps offers up to date.
type Matcher struct {
	log  *eventlog.Log
	cmds Executor
	cfg  Config

	mu       sync.Mutex
	tasks    map[string]*task
	clients  map[string]*client
	queue    []string
	dirty    map[string]string // client → cause of its pending update
	inflight map[string]bool
	again    map[string]bool
	wake     chan struct{}
	ready    bool
}

type task struct {
	id         string
	state      commands.TaskState
	createdSeq uint64
	crit       *commands.Criterion
	// cached is the task's offer, computed once per change of the task
	// and shared by every client offered it.
	cached   events.Offer
	isCached bool
}

// client is what the matcher must know of a client: its attributes and
// the offers last recorded for it (each the very offer of its task when
// equal to it, so 100,000 clients offered one task hold one copy of its
// files and arguments), not its history.
type client struct {
	id      string
	exists  bool
	attrs   events.ClientAttributes
	attrSeq uint64
	offers  []events.Offer
}

// New returns a matcher; Run runs it.
func New(log *eventlog.Log, cmds Executor, cfg Config) *Matcher {
	cfg.Workers = cmp.Or(cfg.Workers, 4)
	cfg.Batch = cmp.Or(cfg.Batch, 1024)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Matcher{log: log, cmds: cmds, cfg: cfg, tasks: map[string]*task{}, clients: map[string]*client{},
		dirty: map[string]string{}, inflight: map[string]bool{}, again: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// Filters are the events the matcher reads.
func (m *Matcher) filters() []string {
	var fs []string
	for _, t := range []string{
		events.TaskCreatedV1, events.TaskUpdatedV1, events.TaskDeletedV1, events.TaskFilesUploadedV1,
		events.TaskStartRequestedV1, events.TaskStopRequestedV1, events.TaskFinishedV1, events.TaskErroredV1,
		events.TaskStoppedV1, events.TaskInterruptedV1, events.TaskSignedV1, events.TaskSuperLinkCAIssuedV1,
		events.ClientRegisteredV1, events.ClientInfoReportedV1, events.ClientOffersChangedV1,
	} {
		fs = append(fs, m.log.TypeFilter(t))
	}
	return fs
}

// Run folds the log from its start, brings every client's offers up to
// date, then follows the log until ctx ends.
func (m *Matcher) Run(ctx context.Context) error {
	last, err := m.log.Replay(ctx, eventlog.FollowOptions{Filters: m.filters(), Batch: 4096}, func(e events.Envelope) error {
		m.mu.Lock()
		m.apply(e)
		m.mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("matcher: replay: %w", err)
	}
	m.mu.Lock()
	m.ready = true
	for id, c := range m.clients {
		if offers, _ := m.desired(c); !slices.EqualFunc(offers, c.offers, commands.OfferEqual) {
			m.mark(id, "reconcile")
		}
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for range m.cfg.Workers {
		wg.Go(func() { m.work(ctx) })
	}
	err = m.log.Follow(ctx, eventlog.FollowOptions{From: last + 1, Filters: m.filters(), Batch: 4096}, func(e events.Envelope) error {
		m.mu.Lock()
		m.apply(e)
		m.mu.Unlock()
		return nil
	})
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("matcher: %w", err)
}

// apply folds one event and marks the clients whose offers it may change.
// Callers hold m.mu.
func (m *Matcher) apply(e events.Envelope) {
	cause := fmt.Sprintf("%s %s@%d", e.Type, e.Aggregate.ID, e.Seq)
	switch e.Aggregate.Kind {
	case events.KindTask:
		t := m.tasks[e.Aggregate.ID]
		if t == nil {
			t = &task{id: e.Aggregate.ID}
			m.tasks[t.id] = t
		}
		wasActive := t.state.Exists && t.state.Status.Active()
		t.state.Apply(e)
		t.isCached = false
		switch e.Event.(type) {
		case *events.TaskCreated:
			t.createdSeq = e.Seq
			t.compile()
		case *events.TaskUpdated:
			t.compile()
		case *events.TaskDeleted:
			delete(m.tasks, t.id)
		}
		isActive := t.state.Exists && t.state.Status.Active()
		if !m.ready || (!wasActive && !isActive) {
			return
		}
		// Clients offered the task, and clients that now match it.
		for id, c := range m.clients {
			offered := slices.ContainsFunc(c.offers, func(o events.Offer) bool { return o.TaskID == t.id })
			if offered || (isActive && t.matches(c)) {
				m.mark(id, cause)
			}
		}
	case events.KindClient:
		c := m.clients[e.Aggregate.ID]
		if c == nil {
			c = &client{id: e.Aggregate.ID}
			m.clients[c.id] = c
		}
		switch p := e.Event.(type) {
		case *events.ClientRegistered:
			c.exists, c.attrs, c.attrSeq, c.offers = true, p.Attributes, e.Seq, nil
		case *events.ClientInfoReported:
			c.attrs, c.attrSeq = p.Attributes, e.Seq
		case *events.ClientOffersChanged:
			c.offers = m.shared(p.Offers)
			return
		default:
			return
		}
		if m.ready {
			m.mark(c.id, cause)
		}
	}
}

func (t *task) compile() {
	crit, err := commands.CompileCriterion(t.state.Spec.SelectionCriteria)
	if err != nil {
		// Criteria are checked before they are stored; an event from an
		// older version may still hold one this version refuses.
		crit = nil
	}
	t.crit = crit
}

func (t *task) matches(c *client) bool {
	return t.crit.Decide(c.id, c.attrs).Matched
}

// shared returns offers as recorded, each replaced by its task's own
// offer when equal to it. Callers hold m.mu.
func (m *Matcher) shared(offers []events.Offer) []events.Offer {
	out := make([]events.Offer, len(offers))
	for i, o := range offers {
		out[i] = o
		if t := m.tasks[o.TaskID]; t != nil {
			if mine := t.offer(); commands.OfferEqual(mine, o) && slices.Equal(mine.Signatures, o.Signatures) {
				out[i] = mine
			}
		}
	}
	return out
}

// Decisions are why each active task is or is not offered to a client,
// as this matcher decides now; false until the matcher has read the log,
// or for a client it does not know.
func (m *Matcher) Decisions(clientID string) ([]events.Decision, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.clients[clientID]
	if !m.ready || c == nil {
		return nil, false
	}
	_, decisions := m.desired(c)
	return decisions, true
}

// mark queues a client for an offers update. Callers hold m.mu.
func (m *Matcher) mark(id, cause string) {
	if _, queued := m.dirty[id]; !queued {
		m.queue = append(m.queue, id)
	}
	m.dirty[id] = cause
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// desired computes a client's offers and the decisions behind them.
// Callers hold m.mu.
func (m *Matcher) desired(c *client) ([]events.Offer, []events.Decision) {
	active := make([]*task, 0, len(m.tasks))
	for _, t := range m.tasks {
		if t.state.Exists && t.state.Status.Active() && t.ready() {
			active = append(active, t)
		}
	}
	slices.SortFunc(active, func(a, b *task) int { return cmp.Compare(a.createdSeq, b.createdSeq) })
	offers := []events.Offer{}
	decisions := make([]events.Decision, 0, len(active))
	for _, t := range active {
		d := t.crit.Decide(c.id, c.attrs)
		d.TaskID, d.Criterion, d.AttributesSeq = t.id, t.state.Spec.SelectionCriteria, c.attrSeq
		decisions = append(decisions, d)
		if d.Matched {
			offers = append(offers, t.offer())
		}
	}
	return offers, decisions
}

// ready reports whether clients can be offered the task's run: a Flower
// App's once its SuperLink's CA certificate is issued (the SuperNodes
// need it to connect).
func (t *task) ready() bool {
	return commands.TaskKind(t.state.Spec) != commands.KindFlowerApp || t.state.SuperLinkCA != ""
}

// offer is what a client needs to fetch and run the task: the files it
// lists in files_paths (all its files when it lists none), never a
// password. Every client is given the same copy.
func (t *task) offer() events.Offer {
	if t.isCached {
		return t.cached
	}
	spec := t.state.Spec
	t.cached = events.Offer{TaskID: t.id, Run: t.state.Run, SpecSeq: t.state.SpecSeq, Host: spec.Host, Port: spec.Port,
		Tags: spec.Tags, ClientArguments: spec.ClientArguments, ClientCommand: spec.ClientCommand,
		// A name never uploaded has no digest: the client will say so.
		Files: events.OfferedFiles(spec.FilesPaths, t.state.Files), Limits: spec.Limits, Signatures: t.state.Signatures,
		SuperLinkCA: t.state.SuperLinkCA}
	t.isCached = true
	return t.cached
}

// finishedWithdrawals names the tasks a client is offered now, will not be
// offered any more, and whose run finished. Callers hold m.mu.
func (m *Matcher) finishedWithdrawals(c *client, next []events.Offer) []string {
	var out []string
	for _, o := range c.offers {
		if slices.ContainsFunc(next, func(n events.Offer) bool { return n.TaskID == o.TaskID && n.Run == o.Run }) {
			continue
		}
		if t := m.tasks[o.TaskID]; t != nil && t.state.Run == o.Run && t.state.Status == commands.StatusFinished {
			out = append(out, o.TaskID)
		}
	}
	return out
}

// update is the offers a worker records for one client.
type update struct {
	id    string
	cause string
	cmd   commands.RecordOffers
}

// work records the offers of queued clients, a batch at a time, one
// update at a time per client: a client updated while its previous
// update is in flight is queued again, so its last offers always win.
func (m *Matcher) work(ctx context.Context) {
	for {
		m.mu.Lock()
		batch := m.takeBatch()
		m.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-m.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		m.record(ctx, batch)
		m.mu.Lock()
		for _, u := range batch {
			m.release(u.id, u.cause)
		}
		m.mu.Unlock()
	}
}

// takeBatch takes up to a batch of queued clients whose offers changed,
// and marks them in flight; a client whose offers did not change (most
// reports change none) needs nothing recorded: the log has what this
// matcher has seen, or later events that will mark the client again.
// Callers hold m.mu.
func (m *Matcher) takeBatch() []update {
	var batch []update
	for len(batch) < m.cfg.Batch {
		id, cause, ok := m.take()
		if !ok {
			break
		}
		c := m.clients[id]
		if c == nil {
			continue
		}
		offers, decisions := m.desired(c)
		if c.exists && slices.EqualFunc(offers, c.offers, commands.OfferEqual) {
			continue
		}
		m.inflight[id] = true
		batch = append(batch, update{id: id, cause: cause, cmd: commands.RecordOffers{ClientID: id, Offers: offers, Decisions: decisions,
			Cause: cause, Finished: m.finishedWithdrawals(c, offers)}})
	}
	if len(m.queue) > 0 {
		// More for the other workers.
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
	return batch
}

// record appends a batch of offers, pipelined when the executor can.
func (m *Matcher) record(ctx context.Context, batch []update) {
	// Sent now: the offers events keep when the matcher decided, so a
	// timeline splits the matcher's hop from the append's.
	rctx, cancel := context.WithTimeout(commands.WithRequestedAt(commands.WithSource(ctx, "matcher"), time.Now()), time.Minute)
	defer cancel()
	errs := make([]error, len(batch))
	if each, ok := m.cmds.(EachExecutor); ok {
		cmds := make([]commands.Command, len(batch))
		for i, u := range batch {
			cmds[i] = u.cmd
		}
		_, errs = each.ExecuteEach(rctx, cmds)
	} else {
		for i, u := range batch {
			_, errs[i] = m.cmds.Execute(rctx, u.cmd)
		}
	}
	for i, err := range errs {
		if err != nil && ctx.Err() == nil {
			m.cfg.Logger.Warn("record offers", "client_id", batch[i].id, "err", err)
		}
	}
}

// release ends a client's update, queueing it again when it was marked
// meanwhile. Callers hold m.mu.
func (m *Matcher) release(id, cause string) {
	delete(m.inflight, id)
	if m.again[id] {
		delete(m.again, id)
		m.mark(id, cause)
	}
}

// take pops the next queued client that is not in flight. Callers hold
// m.mu.
func (m *Matcher) take() (string, string, bool) {
	for len(m.queue) > 0 {
		id := m.queue[0]
		m.queue = m.queue[1:]
		cause, queued := m.dirty[id]
		if !queued {
			continue
		}
		delete(m.dirty, id)
		if m.inflight[id] {
			m.again[id] = true
			continue
		}
		return id, cause, true
	}
	if len(m.queue) == 0 && cap(m.queue) > 1024 {
		m.queue = nil
	}
	return "", "", false
}
