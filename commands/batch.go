package commands

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/nats-io/nuid"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// MaxBatch bounds the commands of one batch.
const MaxBatch = 64

// Keyed is a command of a batch with what WithIdempotencyKey and
// WithRequestedAt give a single command: its own key and the time it was
// requested.
type Keyed struct {
	Cmd         Command
	Key         string
	RequestedAt time.Time
}

// ExecuteBatch decides commands on one aggregate in order, each against
// the state the earlier ones left, and appends all their events in one
// atomic append: one round trip to the log instead of one per command,
// for a reporter that has several things to say at once (an agent whose
// task failed and that turned to the next). A command refused on its
// merits gets its error in errs and changes nothing; the others are
// appended. err is for the batch as a whole (the log unavailable, a
// conflict that would not settle, a batch not of one aggregate).
func (h *Handler) ExecuteBatch(ctx context.Context, items []Keyed) (results []Result, errs []error, err error) {
	if len(items) == 0 {
		return nil, nil, nil
	}
	if len(items) > MaxBatch {
		return nil, nil, fault.Invalid("", "a batch holds at most %d commands, not %d", MaxBatch, len(items))
	}
	agg := items[0].Cmd.Aggregate()
	for _, it := range items {
		if it.Cmd.Aggregate() != agg {
			return nil, nil, fault.Invalid("", "a batch acts on one aggregate, not %s and %s", agg, it.Cmd.Aggregate())
		}
	}
	field := "task_id"
	if agg.Kind == events.KindClient {
		field = "user_id"
	}
	if err := validateID(field, agg.ID); err != nil {
		return nil, nil, err
	}
	lock := &h.locks[maphash.String(h.seed, agg.String())%uint64(len(h.locks))]
	lock.Lock()
	defer lock.Unlock()

	source := h.cfg.Source
	if s, ok := ctx.Value(sourceKey{}).(string); ok && ValidSource(s) {
		source = s
	}
	stale := false
	for range h.cfg.MaxAttempts {
		st, latest, err := h.state(ctx, agg, stale)
		if err != nil {
			return nil, nil, fault.Unavailable(err, "event log unavailable")
		}
		results, errs = make([]Result, len(items)), make([]error, len(items))
		work := *st
		var envs []events.Envelope
		owner := []int{} // the item each event belongs to
		undecided := false
		now := h.cfg.Now()
		// A batch is stored whole or not at all: when a command of it is
		// found stored, the batch was decided before (its reply was lost)
		// up to that command, and those before it that left no trace
		// decided nothing then. Only what follows is decided now.
		done := -1
		for i, it := range items {
			if it.Key == "" {
				continue
			}
			if seq, ok := work.replayed(it.Key, agg); ok {
				results[i], done = Result{Seq: seq, Replayed: true}, i
			}
		}
		for i, it := range items {
			if errs[i] = checkBatchable(it); errs[i] != nil || results[i].Replayed {
				continue
			}
			if i < done {
				results[i].Seq = st.seq
				continue
			}
			payloads, derr := decide(&work, it.Cmd)
			if derr != nil || len(payloads) == 0 {
				undecided = true
			}
			if derr != nil {
				errs[i] = derr
				continue
			}
			for j, p := range payloads {
				id := nuid.Next()
				if it.Key != "" {
					id = keyedID(it.Key, agg, j)
				}
				e, berr := events.New(id, source, agg, now, p)
				if berr != nil {
					return nil, nil, fault.Internal(berr, "build event")
				}
				if !it.RequestedAt.IsZero() {
					at := it.RequestedAt
					e.RequestedAt = &at
				}
				// A provisional sequence: the next command is decided on
				// a state that has this event; the real ones are known
				// once the batch is stored (contiguously).
				e.Seq = work.seq + 1
				work.apply(e)
				envs = append(envs, e)
				owner = append(owner, i)
			}
		}
		if undecided && !latest {
			// As in Execute: a decision to refuse or append nothing is
			// made on the state the log's leader has.
			stale = true
			continue
		}
		if len(envs) == 0 {
			for i := range results {
				if errs[i] == nil && !results[i].Replayed {
					results[i].Seq = st.seq
				}
			}
			return results, errs, nil
		}
		last, aerr := h.store.Append(ctx, st.seq, envs...)
		if errors.Is(aerr, events.ErrConcurrency) {
			stale = true
			continue
		}
		if aerr != nil {
			h.forget(agg)
			return nil, nil, fault.Unavailable(aerr, "event log unavailable")
		}
		first := last - uint64(len(envs)) + 1
		for k := range envs {
			envs[k].Seq = first + uint64(k)
			i := owner[k]
			results[i].Seq = envs[k].Seq
			results[i].Events = append(results[i].Events, envs[k])
		}
		for i := range results {
			if errs[i] == nil && !results[i].Replayed && len(results[i].Events) == 0 {
				results[i].Seq = last
			}
		}
		h.remember(agg, st, envs)
		if h.cfg.OnAppend != nil {
			h.cfg.OnAppend(envs)
		}
		return results, errs, nil
	}
	return nil, nil, fault.Conflict("%s is changing too fast; try again", agg)
}

// checkBatchable refuses what a batch cannot carry: a bad key, or a
// command with a secret to hash (those go one by one through Execute).
func checkBatchable(it Keyed) error {
	if it.Key != "" && !ValidIdempotencyKey(it.Key) {
		return fault.Invalid("idempotency_key", "idempotency key must be 1-128 printable ASCII characters without spaces")
	}
	if _, ok := it.Cmd.(withSecrets); ok {
		return fault.Invalid("", "%T cannot be batched", it.Cmd)
	}
	switch it.Cmd.(type) {
	case taskCommand, clientCommand:
		return nil
	}
	return fault.Internal(fmt.Errorf("%T", it.Cmd), "unknown command")
}
