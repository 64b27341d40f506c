package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/services/api"
)

// maxOutbox bounds the reports an agent keeps while it cannot reach the
// cloud; past it the oldest are dropped, with a warning.
const maxOutbox = 10_000

// outbox delivers the agent's reports in order, each under its own
// idempotency key, retrying until the cloud acknowledges it: a report
// made while the link is down waits for the link, and one whose reply
// was lost is sent again and appended once.
//
// With a journal, what waits survives the agent too: every report is
// written to the journal before it is queued and its acknowledgement
// after, and an agent that starts again sends what its earlier life left
// unacknowledged, first and under the same keys.
//
// Task reports that wait together go in one request (sendMany): an agent
// whose task failed says errored,
// quarantined, downloaded and started for the next task in one or two
// round trips, not four acknowledged one after the other.
type outbox struct {
	send     func(context.Context, pending) error
	sendMany func(context.Context, []pending) ([]error, error) // nil: one by one
	log      *slog.Logger
	notify   chan struct{}

	mu      sync.Mutex
	queue   []pending
	dropped int
	idle    chan struct{} // closed while the queue is empty
	journal journal
}

type pending struct {
	Key  string                     `json:"key"`
	At   time.Time                  `json:"at"`
	Info *commands.ReportClientInfo `json:"info,omitempty"`
	Task *commands.ReportClientTask `json:"task,omitempty"`

	seq uint64 // where a stream journal keeps it
}

func newOutbox(send func(context.Context, pending) error, sendMany func(context.Context, []pending) ([]error, error), log *slog.Logger) *outbox {
	idle := make(chan struct{})
	close(idle)
	return &outbox{send: send, sendMany: sendMany, log: log, notify: make(chan struct{}, 1), idle: idle}
}

func (o *outbox) add(p pending) {
	p.Key, p.At = "agent-"+nuid.Next(), time.Now()
	o.mu.Lock()
	if len(o.queue) == 0 {
		o.idle = make(chan struct{})
	}
	if len(o.queue) >= maxOutbox {
		dropped := o.queue[0].Key
		o.queue = o.queue[1:]
		o.acked(dropped, o.queue)
		o.dropped++
		o.log.Warn("outbox full: dropped the oldest report", "dropped", o.dropped)
	}
	if o.journal != nil {
		if err := o.journal.add(&p); err != nil {
			o.log.Warn("outbox journal: report kept in memory only", "key", p.Key, "err", err)
		}
	}
	o.queue = append(o.queue, p)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
	}
}

// useJournal loads what an earlier life left in j, queues it first, and
// keeps journaling in j; it returns how many reports it loaded.
func (o *outbox) useJournal(j journal) (int, error) {
	left, err := j.load()
	if err != nil {
		return 0, fmt.Errorf("outbox journal: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range o.queue { // reports made before the journal was opened
		if err := j.add(&o.queue[i]); err != nil {
			return 0, fmt.Errorf("outbox journal: %w", err)
		}
	}
	o.queue = append(left, o.queue...)
	if len(o.queue) > 0 {
		o.idle = make(chan struct{})
	}
	o.journal = j
	return len(left), nil
}

// acked tells the journal that key no longer waits and rest does;
// callers hold o.mu.
func (o *outbox) acked(key string, rest []pending) {
	if o.journal == nil {
		return
	}
	if err := o.journal.acked(key, rest); err != nil {
		o.log.Warn("outbox journal", "err", err)
	}
}

func (o *outbox) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.journal != nil {
		o.journal.close()
		o.journal = nil
	}
}

// Len is how many reports wait.
func (o *outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue)
}

// drained is closed once nothing waits.
func (o *outbox) drained() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.idle
}

// head returns the reports to send next: the task reports at the head
// of the queue (up to commands.MaxBatch) when batches are allowed, else
// the first report alone.
func (o *outbox) head(batch bool) []pending {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for n < len(o.queue) && n < commands.MaxBatch && o.queue[n].Task != nil && (batch || n == 0) {
		n++
	}
	if n == 0 && len(o.queue) > 0 {
		n = 1 // an attributes report goes alone
	}
	return slices.Clone(o.queue[:n])
}

// deliver sends reports, in one request when there are several; it
// returns the error of the request, and logs the reports refused on
// their merits (sending those again changes nothing).
func (o *outbox) deliver(ctx context.Context, batch []pending) error {
	if len(batch) == 1 {
		return o.send(ctx, batch[0])
	}
	errs, err := o.sendMany(ctx, batch)
	if err != nil {
		return err
	}
	for i, e := range errs {
		if e != nil {
			o.log.Warn("report refused", "key", batch[i].Key, "err", e)
		}
	}
	return nil
}

// run sends the reports until ctx ends; reconnected wakes it from a
// back-off.
func (o *outbox) run(ctx context.Context, reconnected <-chan struct{}) {
	backoff := 100 * time.Millisecond
	batches := o.sendMany != nil
	for {
		sent := o.head(batches)
		if len(sent) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-o.notify:
			}
			continue
		}
		head := sent[0]
		err := o.deliver(ctx, sent)
		if len(sent) > 1 && errors.Is(err, nats.ErrNoResponders) && o.send(ctx, head) == nil {
			// A cloud that takes no batches, but is there: one by one,
			// from now on.
			o.log.Info("the cloud takes reports one by one")
			batches, sent, err = false, sent[:1], nil
		}
		var wait time.Duration
		switch kind := fault.KindOf(err); {
		case err == nil:
			backoff = 100 * time.Millisecond
		case kind == fault.KindRateLimited:
			wait = time.Duration(fault.AsError(err).RetryAfterMS) * time.Millisecond
		case kind == fault.KindUnavailable:
			wait, backoff = backoff, min(2*backoff, 5*time.Second)
			o.log.Debug("cloud unreachable: report kept", "key", head.Key, "waiting", o.Len(), "err", err)
		default:
			// Refused on its merits: sending it again changes nothing.
			o.log.Warn("report refused", "key", head.Key, "err", err)
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-reconnected:
			case <-time.After(wait):
			}
			continue
		}
		o.mu.Lock()
		for _, p := range sent {
			if len(o.queue) > 0 && o.queue[0].Key == p.Key {
				o.queue = o.queue[1:]
				o.acked(p.Key, o.queue)
			}
		}
		if len(o.queue) == 0 {
			close(o.idle)
		}
		o.mu.Unlock()
	}
}

// sendManyTo returns the sender of an agent's task reports in batches.
func sendManyTo(conn *api.ClientConn) func(context.Context, []pending) ([]error, error) {
	return func(ctx context.Context, ps []pending) ([]error, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		reports := make([]api.TaskReport, len(ps))
		for i, p := range ps {
			reports[i] = api.TaskReport{Key: p.Key, RequestedAt: p.At, Report: *p.Task}
		}
		reply, err := conn.Tasks(ctx, reports)
		if err != nil {
			return nil, err
		}
		errs := make([]error, len(ps))
		for i, r := range reply.Results {
			if r.Error != nil {
				errs[i] = r.Error
			}
		}
		return errs, nil
	}
}

// sendTo returns the sender of an agent's reports over its endpoints.
func sendTo(conn *api.ClientConn) func(context.Context, pending) error {
	return func(ctx context.Context, p pending) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ctx = commands.WithRequestedAt(commands.WithIdempotencyKey(ctx, p.Key), p.At)
		var err error
		if p.Info != nil {
			_, err = conn.Report(ctx, *p.Info)
		} else {
			_, err = conn.Task(ctx, *p.Task)
		}
		return err
	}
}
