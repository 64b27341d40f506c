package agent

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nuid"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/services/api"
)

// maxOutbox bounds the reports an agent keeps while it cannot reach the
// cloud; past it the oldest are dropped, with a warning.
const maxOutbox = 10_000

// outbox delivers the agent's reports in order, each under its own
// idempotency key, retrying until the cloud acknowledges it: a report
// made while the link is down waits for the link, and one whose reply
// was lost is sent again and appended once.
type outbox struct {
	send   func(context.Context, pending) error
	log    *slog.Logger
	notify chan struct{}

	mu      sync.Mutex
	queue   []pending
	dropped int
	idle    chan struct{} // closed while the queue is empty
}

type pending struct {
	key  string
	at   time.Time
	info *commands.ReportClientInfo
	task *commands.ReportClientTask
}

func newOutbox(send func(context.Context, pending) error, log *slog.Logger) *outbox {
	idle := make(chan struct{})
	close(idle)
	return &outbox{send: send, log: log, notify: make(chan struct{}, 1), idle: idle}
}

func (o *outbox) add(p pending) {
	p.key, p.at = "agent-"+nuid.Next(), time.Now()
	o.mu.Lock()
	if len(o.queue) == 0 {
		o.idle = make(chan struct{})
	}
	if len(o.queue) >= maxOutbox {
		o.queue = o.queue[1:]
		o.dropped++
		o.log.Warn("outbox full: dropped the oldest report", "dropped", o.dropped)
	}
	o.queue = append(o.queue, p)
	o.mu.Unlock()
	select {
	case o.notify <- struct{}{}:
	default:
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

// run sends the reports until ctx ends; reconnected wakes it from a
// back-off.
func (o *outbox) run(ctx context.Context, reconnected <-chan struct{}) {
	backoff := 100 * time.Millisecond
	for {
		o.mu.Lock()
		var head pending
		ok := len(o.queue) > 0
		if ok {
			head = o.queue[0]
		}
		o.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-o.notify:
			}
			continue
		}
		err := o.send(ctx, head)
		var wait time.Duration
		switch kind := commands.KindOf(err); {
		case err == nil:
			backoff = 100 * time.Millisecond
		case kind == commands.KindRateLimited:
			wait = time.Duration(commands.AsError(err).RetryAfterMS) * time.Millisecond
		case kind == commands.KindUnavailable:
			wait, backoff = backoff, min(2*backoff, 5*time.Second)
			o.log.Debug("cloud unreachable: report kept", "key", head.key, "waiting", o.Len(), "err", err)
		default:
			// Refused on its merits: sending it again changes nothing.
			o.log.Warn("report refused", "key", head.key, "err", err)
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
		if len(o.queue) > 0 && o.queue[0].key == head.key {
			o.queue = o.queue[1:]
		}
		if len(o.queue) == 0 {
			close(o.idle)
		}
		o.mu.Unlock()
	}
}

// sendTo returns the sender of an agent's reports over its endpoints.
func sendTo(conn *api.ClientConn) func(context.Context, pending) error {
	return func(ctx context.Context, p pending) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ctx = commands.WithRequestedAt(commands.WithIdempotencyKey(ctx, p.key), p.at)
		var err error
		if p.info != nil {
			_, err = conn.Report(ctx, *p.info)
		} else {
			_, err = conn.Task(ctx, *p.task)
		}
		return err
	}
}
