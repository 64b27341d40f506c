package commands

import (
	"context"
	"time"

	"github.com/nats-io/nuid"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// PipelinedStore is a Store that can also append one event to each of
// many aggregates at once, each with its own expected sequence, and tell
// what became of each (see eventlog.Log.AppendEach).
type PipelinedStore interface {
	AppendEach(ctx context.Context, expected []uint64, envs []events.Envelope) (seqs []uint64, errs []error)
}

// ExecuteEach executes commands, each as Execute would, with the appends
// of those that decide one event on an aggregate of their own pipelined
// in one go: the matcher records the offers of thousands of clients after
// a start in about the time of one append, not one round trip each. A
// command whose pipelined append is refused (its aggregate changed
// meanwhile), whose outcome is unknown, or that is not of that kind, goes
// through Execute, which decides again on the latest state; the expected
// sequence of every append keeps decisions made concurrently on one
// aggregate from both being stored. Commands run with an idempotency key
// go through Execute.
func (h *Handler) ExecuteEach(ctx context.Context, cmds []Command) ([]Result, []error) {
	results, errs := make([]Result, len(cmds)), make([]error, len(cmds))
	store, pipelined := h.store.(PipelinedStore)
	var slow []int
	type pending struct {
		i  int
		st *cached
	}
	var (
		batch    []pending
		expected []uint64
		envs     []events.Envelope
		seen     = map[events.Aggregate]bool{}
	)
	source := h.cfg.Source
	if s, ok := ctx.Value(sourceKey{}).(string); ok && ValidSource(s) {
		source = s
	}
	var requested *time.Time
	if at, ok := RequestedAt(ctx); ok {
		requested = &at
	}
	now := h.cfg.Now()
	for i, cmd := range cmds {
		agg := cmd.Aggregate()
		_, secret := cmd.(withSecrets)
		if !pipelined || IdempotencyKey(ctx) != "" || secret || seen[agg] || validateID("id", agg.ID) != nil {
			slow = append(slow, i)
			continue
		}
		seen[agg] = true
		st, _, err := h.state(ctx, agg, false)
		if err != nil {
			results[i], errs[i] = Result{}, fault.Unavailable(err, "event log unavailable")
			continue
		}
		payloads, err := decide(st, cmd)
		if err != nil || len(payloads) != 1 {
			// Refused, or nothing to do, on a state that may be behind
			// the log's leader; or several events to store together.
			slow = append(slow, i)
			continue
		}
		env, err := events.New(nuid.Next(), source, agg, now, payloads[0])
		if err != nil {
			errs[i] = fault.Internal(err, "build event")
			continue
		}
		env.RequestedAt = requested
		batch = append(batch, pending{i, st})
		expected = append(expected, st.seq)
		envs = append(envs, env)
	}
	if len(envs) > 0 {
		seqs, aerrs := store.AppendEach(ctx, expected, envs)
		var appended []events.Envelope
		for k, p := range batch {
			if aerrs[k] != nil {
				slow = append(slow, p.i)
				h.forget(envs[k].Aggregate)
				continue
			}
			envs[k].Seq = seqs[k]
			h.rememberNewer(envs[k].Aggregate, p.st, envs[k])
			results[p.i] = Result{Seq: seqs[k], Events: []events.Envelope{envs[k]}}
			appended = append(appended, envs[k])
		}
		if h.cfg.OnAppend != nil && len(appended) > 0 {
			h.cfg.OnAppend(appended)
		}
	}
	for _, i := range slow {
		results[i], errs[i] = h.Execute(ctx, cmds[i])
	}
	return results, errs
}

// rememberNewer caches the state after e unless a command appended after
// it meanwhile (ExecuteEach does not hold the aggregate's lock while it
// appends).
func (h *Handler) rememberNewer(agg events.Aggregate, st *cached, e events.Envelope) {
	next := *st
	next.apply(e)
	h.mu.Lock()
	defer h.mu.Unlock()
	if c, ok := h.cache[agg]; ok && c.seq > e.Seq {
		return
	}
	h.put(agg, &next)
}
