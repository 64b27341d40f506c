package commands

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/nats-io/nuid"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// Command is anything the Handler can decide: it names the aggregate it
// acts on and decides against that aggregate's state.
type Command interface {
	Aggregate() events.Aggregate
}

type taskCommand interface {
	Command
	decide(TaskState) ([]events.Payload, error)
}

type clientCommand interface {
	Command
	decide(ClientState) ([]events.Payload, error)
}

type enrolmentCommand interface {
	Command
	decide(EnrolmentState) ([]events.Payload, error)
}

// secret is a clear-text field of a command and where its hash goes.
type secret struct {
	clear *string
	hash  *string
}

type withSecrets interface {
	secrets() []secret
}

// Store is the event log as the Handler needs it.
type Store interface {
	// Load returns the aggregate's events stored after sequence after, as
	// some replica of the log has them (an append checks it), and
	// LoadLatest up to the last one the log's leader has (what a decision
	// to append nothing must be made on).
	Load(ctx context.Context, agg events.Aggregate, after uint64) ([]events.Envelope, error)
	LoadLatest(ctx context.Context, agg events.Aggregate, after uint64) ([]events.Envelope, error)
	// Append stores events if the aggregate's last sequence is expected
	// and returns the sequence of the last one; a mismatch is an error
	// wrapping events.ErrConcurrency.
	Append(ctx context.Context, expected uint64, envs ...events.Envelope) (uint64, error)
}

// Config configures a Handler. Zero values pick the defaults.
type Config struct {
	// Source names the component recorded in every event (default
	// "commands").
	Source string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// HashPassword turns a clear password into a salted slow hash
	// (default bcrypt).
	HashPassword func(string) (string, error)
	// MaxAttempts bounds retries after a concurrent append (default 8).
	MaxAttempts int
	// MaxCached bounds how many aggregate states are kept in memory
	// (default 250,000: a fleet of 100,000 clients and its tasks fit).
	MaxCached int
	// OnAppend, when set, is told about every batch of events appended.
	OnAppend func([]events.Envelope)
}

// Result is the outcome of a command.
type Result struct {
	// Seq is the stream sequence of the last event appended, or the
	// aggregate's current sequence when nothing was appended.
	Seq uint64 `json:"seq"`
	// Events are the events appended, in order (empty: nothing changed).
	Events []events.Envelope `json:"-"`
	// Replayed is true when the command repeated an idempotency key the
	// aggregate had already acted on: nothing was appended and Seq is
	// the sequence of the first command's last event.
	Replayed bool `json:"replayed,omitempty"`
}

// Handler executes commands: load, decide, append, retry on conflict. It is
// safe for concurrent use; commands on one aggregate are serialised within
// a process and across processes by the expected sequence.
type Handler struct {
	store Store
	cfg   Config
	seed  maphash.Seed
	locks [256]sync.Mutex

	mu    sync.Mutex
	cache map[events.Aggregate]*cached
}

type cached struct {
	seq       uint64
	task      TaskState
	client    ClientState
	enrolment EnrolmentState
	// keyed are the aggregate's most recent events appended under an
	// idempotency key, oldest first; never modified in place, so copies
	// of a cached state may share it.
	keyed []keyedEvent
}

type keyedEvent struct {
	id  string
	seq uint64
}

// MaxRemembered is how many keyed commands each aggregate remembers: a
// key repeated after that many newer keyed commands on the same
// aggregate is acted on again.
const MaxRemembered = 64

func (c *cached) apply(e events.Envelope) {
	switch e.Aggregate.Kind {
	case events.KindTask:
		c.task.Apply(e)
	case events.KindClient:
		c.client.Apply(e)
	case events.KindEnrolment:
		c.enrolment.Apply(e)
	}
	c.seq = e.Seq
	if isKeyedID(e.ID) {
		n := min(len(c.keyed), MaxRemembered-1)
		next := make([]keyedEvent, 0, n+1)
		next = append(next, c.keyed[len(c.keyed)-n:]...)
		c.keyed = append(next, keyedEvent{e.ID, e.Seq})
	}
}

// replayed returns the sequence of the last event the command under key
// appended to agg, if the aggregate remembers it.
func (c *cached) replayed(key string, agg events.Aggregate) (uint64, bool) {
	first := keyedID(key, agg, 0)
	for i, k := range c.keyed {
		if k.id != first {
			continue
		}
		// A command's events are appended together, so its later
		// events follow its first.
		seq := k.seq
		for j, next := range c.keyed[i+1:] {
			if next.id != keyedID(key, agg, j+1) {
				break
			}
			seq = next.seq
		}
		return seq, true
	}
	return 0, false
}

// NewHandler returns a Handler appending to store.
func NewHandler(store Store, cfg Config) *Handler {
	cfg.Source = cmp.Or(cfg.Source, "commands")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HashPassword == nil {
		cfg.HashPassword = HashPassword
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 8
	}
	if cfg.MaxCached <= 0 {
		cfg.MaxCached = 250_000
	}
	return &Handler{store: store, cfg: cfg, seed: maphash.MakeSeed(), cache: map[events.Aggregate]*cached{}}
}

type sourceKey struct{}

// WithSource names the component on whose behalf commands run with ctx
// are executed; it is recorded as the source of their events.
func WithSource(ctx context.Context, source string) context.Context {
	return context.WithValue(ctx, sourceKey{}, source)
}

type requestedKey struct{}

// WithRequestedAt records when the caller sent the command; the events it
// causes carry that time beside the time they were recorded.
func WithRequestedAt(ctx context.Context, at time.Time) context.Context {
	return context.WithValue(ctx, requestedKey{}, at.UTC())
}

type keyKey struct{}

// WithIdempotencyKey makes the commands run with ctx idempotent under key:
// their events get ids derived from the key and the aggregate, so a
// command repeated with the same key (a retry after a lost reply, a
// duplicate delivery, a storm of resubmissions from any number of
// processes) appends its events once and answers with the first one's
// result. ValidIdempotencyKey tells which keys are accepted.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyKey{}, key)
}

// IdempotencyKey returns the key WithIdempotencyKey put in ctx, if any.
func IdempotencyKey(ctx context.Context) string {
	k, _ := ctx.Value(keyKey{}).(string)
	return k
}

// ValidIdempotencyKey reports whether key may be used: 1-128 printable
// ASCII characters without spaces.
func ValidIdempotencyKey(key string) bool {
	return printableWord(key, 128)
}

// printableWord reports whether s has 1 to max printable ASCII characters
// and no spaces.
func printableWord(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// keyedPrefix starts the ids of events appended under an idempotency key;
// generated ids (NUIDs) are upper-case letters and digits, so they never
// start with it.
const keyedPrefix = "k-"

func isKeyedID(id string) bool {
	return len(id) > len(keyedPrefix) && id[:len(keyedPrefix)] == keyedPrefix
}

// keyedID derives the id of the i-th event a command under key appends to
// agg.
func keyedID(key string, agg events.Aggregate, i int) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d", agg, key, i)
	return keyedPrefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// RequestedAt returns the time WithRequestedAt put in ctx, if any.
func RequestedAt(ctx context.Context) (time.Time, bool) {
	at, ok := ctx.Value(requestedKey{}).(time.Time)
	return at, ok && !at.IsZero()
}

// ValidSource reports whether s may name a component: 1-64 printable
// ASCII characters without spaces.
func ValidSource(s string) bool {
	return printableWord(s, 64)
}

// Execute decides cmd against the current state of its aggregate and
// appends the resulting events. Errors are *fault.Error.
func (h *Handler) Execute(ctx context.Context, cmd Command) (Result, error) {
	agg := cmd.Aggregate()
	field := "task_id"
	switch agg.Kind {
	case events.KindClient:
		field = "user_id"
	case events.KindEnrolment:
		field = "id"
	}
	if err := validateID(field, agg.ID); err != nil {
		return Result{}, err
	}
	key := IdempotencyKey(ctx)
	if key != "" && !ValidIdempotencyKey(key) {
		return Result{}, fault.Invalid("idempotency_key", "idempotency key must be 1-128 printable ASCII characters without spaces")
	}
	if s, ok := cmd.(withSecrets); ok {
		for _, sec := range s.secrets() {
			if *sec.clear == "" {
				continue
			}
			if len(*sec.clear) > maxPassword {
				return Result{}, fault.Invalid("password", "password is longer than %d bytes", maxPassword)
			}
			hash, err := h.cfg.HashPassword(*sec.clear)
			if err != nil {
				return Result{}, fault.Internal(err, "hash password")
			}
			*sec.hash = hash
		}
	}
	lock := h.lockOf(agg)
	lock.Lock()
	defer lock.Unlock()
	return h.executeLocked(ctx, cmd, agg, key)
}

// lockOf returns the lock that serialises the commands on agg.
func (h *Handler) lockOf(agg events.Aggregate) *sync.Mutex {
	return &h.locks[maphash.String(h.seed, agg.String())%uint64(len(h.locks))]
}

// executeLocked is Execute once the command is checked and its
// aggregate's lock is held.
func (h *Handler) executeLocked(ctx context.Context, cmd Command, agg events.Aggregate, key string) (Result, error) {
	stale := false
	for range h.cfg.MaxAttempts {
		st, latest, err := h.state(ctx, agg, stale)
		if err != nil {
			return Result{}, fault.Unavailable(err, "event log unavailable")
		}
		if key != "" {
			// A key's first event id is enough to recognise it; a
			// command that appended nothing left no trace and is
			// decided again.
			if seq, ok := st.replayed(key, agg); ok {
				return Result{Seq: seq, Replayed: true}, nil
			}
		}
		payloads, err := decide(st, cmd)
		if (err != nil || len(payloads) == 0) && !latest {
			// Other processes (replicas of the cloud) may have appended
			// since the state was cached or read from a replica that is
			// behind, and only an append checks it: a decision to append
			// nothing is made on the state the log's leader has.
			stale = true
			continue
		}
		if err != nil {
			return Result{}, err
		}
		if len(payloads) == 0 {
			return Result{Seq: st.seq}, nil
		}
		now := h.cfg.Now()
		source := h.cfg.Source
		if s, ok := ctx.Value(sourceKey{}).(string); ok && ValidSource(s) {
			source = s
		}
		var requested *time.Time
		if at, ok := ctx.Value(requestedKey{}).(time.Time); ok && !at.IsZero() {
			requested = &at
		}
		envs := make([]events.Envelope, len(payloads))
		for i, p := range payloads {
			id := nuid.Next()
			if key != "" {
				id = keyedID(key, agg, i)
			}
			envs[i], err = events.New(id, source, agg, now, p)
			if err != nil {
				return Result{}, fault.Internal(err, "build event")
			}
			envs[i].RequestedAt = requested
		}
		last, err := h.store.Append(ctx, st.seq, envs...)
		if errors.Is(err, events.ErrAlreadyStored) {
			// A duplicate under the same idempotency key got there first.
			h.forget(agg)
			return Result{Seq: last, Replayed: true}, nil
		}
		if errors.Is(err, events.ErrConcurrency) {
			stale = true
			continue
		}
		if err != nil {
			h.forget(agg)
			return Result{}, fault.Unavailable(err, "event log unavailable")
		}
		first := last - uint64(len(envs)) + 1
		for i := range envs {
			envs[i].Seq = first + uint64(i)
		}
		h.remember(agg, st, envs)
		if h.cfg.OnAppend != nil {
			h.cfg.OnAppend(envs)
		}
		return Result{Seq: last, Events: envs}, nil
	}
	return Result{}, fault.Conflict("%s is changing too fast; try again", agg)
}

func decide(st *cached, cmd Command) ([]events.Payload, error) {
	switch c := cmd.(type) {
	case taskCommand:
		return c.decide(st.task)
	case clientCommand:
		return c.decide(st.client)
	case enrolmentCommand:
		return c.decide(st.enrolment)
	}
	return nil, fault.Internal(fmt.Errorf("%T", cmd), "unknown command")
}

// state returns a copy of the aggregate's state: the cached one, or one
// loaded from the log when it is not cached; with stale, one loaded up to
// what the log's leader has, and latest says so.
func (h *Handler) state(ctx context.Context, agg events.Aggregate, stale bool) (st *cached, latest bool, err error) {
	h.mu.Lock()
	c, ok := h.cache[agg]
	h.mu.Unlock()
	if ok && !stale {
		cp := *c
		return &cp, false, nil
	}
	if ok {
		cp := *c
		c = &cp
	} else {
		c = &cached{}
	}
	load := h.store.Load
	if stale {
		load = h.store.LoadLatest
	}
	evs, err := load(ctx, agg, c.seq)
	if err != nil {
		return nil, false, err
	}
	for _, e := range evs {
		c.apply(e)
	}
	h.mu.Lock()
	h.put(agg, c)
	h.mu.Unlock()
	cp := *c
	return &cp, stale, nil
}

func (h *Handler) remember(agg events.Aggregate, st *cached, envs []events.Envelope) {
	next := *st
	for _, e := range envs {
		next.apply(e)
	}
	h.mu.Lock()
	h.put(agg, &next)
	h.mu.Unlock()
}

// put stores a state; when the cache is full an eighth of it, chosen at
// random, is dropped first, which costs those reloads but keeps memory
// bounded (emptying it all would make every aggregate of a fleet
// slightly larger than the cache reload at once). Callers hold h.mu.
func (h *Handler) put(agg events.Aggregate, c *cached) {
	if _, ok := h.cache[agg]; !ok && len(h.cache) >= h.cfg.MaxCached {
		drop := max(1, len(h.cache)/8)
		for k := range h.cache {
			if drop == 0 {
				break
			}
			delete(h.cache, k)
			drop--
		}
	}
	h.cache[agg] = c
}

// forget drops a cached state so the next command reloads it.
func (h *Handler) forget(agg events.Aggregate) {
	h.mu.Lock()
	delete(h.cache, agg)
	h.mu.Unlock()
}
