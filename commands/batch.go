package commands

import (
	"context"
	"fmt"
	"time"

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

// ExecuteBatch executes commands on one aggregate in order, each as
// Execute would with its own key and requested time, under one hold of
// the aggregate's lock: one request for a reporter that has several
// things to say at once (an agent whose task failed and that turned to
// the next), not one round trip each. Each command is appended on its
// own: JetStream's atomic batch publish costs tens of milliseconds where
// a single publish costs a fraction of one, and the commands of a batch
// are independent facts, each idempotent under its key, so a batch cut
// short by a failure is sent again and completed. A command refused on
// its merits gets its error in errs and changes nothing; err is for the
// batch as a whole (the log unavailable, a conflict that would not
// settle, a batch not of one aggregate), and then the batch is to be sent
// again.
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
	lock := h.lockOf(agg)
	lock.Lock()
	defer lock.Unlock()

	st, _, err := h.state(ctx, agg, false)
	if err != nil {
		return nil, nil, fault.Unavailable(err, "event log unavailable")
	}
	// A batch sent again (its reply was lost) was executed up to its last
	// command found stored; those before it that left no trace decided
	// nothing then and are not decided again.
	done := -1
	for i, it := range items {
		if it.Key != "" {
			if _, ok := st.replayed(it.Key, agg); ok {
				done = i
			}
		}
	}
	results, errs = make([]Result, len(items)), make([]error, len(items))
	for i, it := range items {
		if errs[i] = checkBatchable(it); errs[i] != nil {
			continue
		}
		if i < done && (it.Key == "" || !replayedIn(st, it.Key, agg)) {
			results[i].Seq = st.seq
			continue
		}
		ictx := ctx
		if it.Key != "" {
			ictx = WithIdempotencyKey(ictx, it.Key)
		}
		if !it.RequestedAt.IsZero() {
			ictx = WithRequestedAt(ictx, it.RequestedAt)
		}
		res, err := h.executeLocked(ictx, it.Cmd, agg, it.Key)
		if k := fault.KindOf(err); err != nil && (k == fault.KindUnavailable || k == fault.KindConflict || k == fault.KindInternal) {
			return nil, nil, err
		}
		results[i], errs[i] = res, err
	}
	return results, errs, nil
}

func replayedIn(st *cached, key string, agg events.Aggregate) bool {
	_, ok := st.replayed(key, agg)
	return ok
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
