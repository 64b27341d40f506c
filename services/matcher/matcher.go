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

// Config configures a matcher.
type Config struct {
	// Workers append offers concurrently (default 64).
	Workers int
	Logger  *slog.Logger
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
}

type client struct {
	id    string
	state commands.ClientState
}

// New returns a matcher; Run runs it.
func New(log *eventlog.Log, cmds Executor, cfg Config) *Matcher {
	if cfg.Workers == 0 {
		cfg.Workers = 64
	}
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
		events.TaskStoppedV1, events.TaskInterruptedV1, events.TaskSignedV1,
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
		if offers, _ := m.desired(c); !slices.EqualFunc(offers, c.state.Offers, commands.OfferEqual) {
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
			offered := slices.ContainsFunc(c.state.Offers, func(o events.Offer) bool { return o.TaskID == t.id })
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
		c.state.Apply(e)
		switch e.Event.(type) {
		case *events.ClientRegistered, *events.ClientInfoReported:
			if m.ready {
				m.mark(c.id, cause)
			}
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
	return t.crit.Decide(c.id, c.state.Attributes).Matched
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
		if t.state.Exists && t.state.Status.Active() {
			active = append(active, t)
		}
	}
	slices.SortFunc(active, func(a, b *task) int { return cmp.Compare(a.createdSeq, b.createdSeq) })
	offers := []events.Offer{}
	decisions := make([]events.Decision, 0, len(active))
	for _, t := range active {
		d := t.crit.Decide(c.id, c.state.Attributes)
		d.TaskID, d.Criterion, d.AttributesSeq = t.id, t.state.Spec.SelectionCriteria, c.state.AttributesSeq
		decisions = append(decisions, d)
		if d.Matched {
			offers = append(offers, t.offer())
		}
	}
	return offers, decisions
}

// offer is what a client needs to fetch and run the task: the files it
// lists in files_paths (all its files when it lists none), never a
// password.
func (t *task) offer() events.Offer {
	spec := t.state.Spec
	o := events.Offer{TaskID: t.id, Run: t.state.Run, SpecSeq: t.state.SpecSeq, Host: spec.Host, Port: spec.Port,
		Tags: spec.Tags, ClientArguments: spec.ClientArguments, ClientCommand: spec.ClientCommand,
		// A name never uploaded has no digest: the client will say so.
		Files: events.OfferedFiles(spec.FilesPaths, t.state.Files), Limits: spec.Limits, Signatures: t.state.Signatures}
	return o
}

// finishedWithdrawals names the tasks a client is offered now, will not be
// offered any more, and whose run finished. Callers hold m.mu.
func (m *Matcher) finishedWithdrawals(c *client, next []events.Offer) []string {
	var out []string
	for _, o := range c.state.Offers {
		if slices.ContainsFunc(next, func(n events.Offer) bool { return n.TaskID == o.TaskID && n.Run == o.Run }) {
			continue
		}
		if t := m.tasks[o.TaskID]; t != nil && t.state.Run == o.Run && t.state.Status == commands.StatusFinished {
			out = append(out, o.TaskID)
		}
	}
	return out
}

// work appends offers for queued clients, one client at a time per
// client: a client updated while its previous update is in flight is
// queued again, so its last offers always win.
func (m *Matcher) work(ctx context.Context) {
	for {
		m.mu.Lock()
		id, cause, ok := m.take()
		var offers []events.Offer
		var decisions []events.Decision
		var finished []string
		unchanged := false
		if ok {
			m.inflight[id] = true
			if c := m.clients[id]; c != nil {
				offers, decisions = m.desired(c)
				finished = m.finishedWithdrawals(c, offers)
				// Most reports change no offers: then there is nothing to
				// record (the log has what this matcher has seen, or later
				// events that will mark the client again).
				unchanged = c.state.Exists && slices.EqualFunc(offers, c.state.Offers, commands.OfferEqual)
			}
		}
		m.mu.Unlock()
		if !ok {
			select {
			case <-m.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		if !unchanged {
			rctx, cancel := context.WithTimeout(commands.WithSource(ctx, "matcher"), 15*time.Second)
			_, err := m.cmds.Execute(rctx, commands.RecordOffers{ClientID: id, Offers: offers, Decisions: decisions, Cause: cause, Finished: finished})
			cancel()
			if err != nil && ctx.Err() == nil {
				m.cfg.Logger.Warn("record offers", "client_id", id, "err", err)
			}
		}
		m.mu.Lock()
		delete(m.inflight, id)
		if m.again[id] {
			delete(m.again, id)
			m.mark(id, cause)
		}
		m.mu.Unlock()
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
