package supervisor

import (
	"context"
	"sync"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// recorder records the events of one run in the order they happened, on
// a goroutine of its own. A server's output is read at full speed into
// it, whatever the log does: an election or a slow stream delays the
// events, loses none, and cannot make a run that finished look as if its
// output stopped.
type recorder struct {
	record func(ctx context.Context, p events.Payload) error
	ctx    context.Context // ends the retries: the cloud is going away for good

	mu      sync.Mutex
	queue   []events.Payload
	closed  bool
	dropped int
	wake    chan struct{}
	done    chan struct{}
}

// maxPending bounds the events a run may have waiting; past it, round and
// trigger events are dropped (and counted), never the ones that end a run.
const maxPending = 10_000

func newRecorder(ctx context.Context, record func(context.Context, events.Payload) error) *recorder {
	return &recorder{record: record, ctx: ctx, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// add queues an event; it never blocks.
func (r *recorder) add(p events.Payload) {
	r.mu.Lock()
	if len(r.queue) >= maxPending && droppable(p) {
		r.dropped++
		r.mu.Unlock()
		return
	}
	r.queue = append(r.queue, p)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func droppable(p events.Payload) bool {
	switch p.(type) {
	case *events.TaskRoundCompleted, *events.TaskTriggerFired, *events.TaskTriggerRan, *events.TaskStepReported:
		return true
	}
	return false
}

// close says no event comes after those queued; done is closed once they
// are recorded.
func (r *recorder) close() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// run records the queued events, one at a time and in order, retrying
// while the log cannot be reached, until close was called and everything
// is recorded (or ctx ends).
func (r *recorder) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			closed := r.closed
			r.mu.Unlock()
			if closed {
				return
			}
			select {
			case <-r.wake:
			case <-r.ctx.Done():
				return
			}
			continue
		}
		p := r.queue[0]
		r.mu.Unlock()
		for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			err := r.record(r.ctx, p)
			if err == nil || !retryable(err) {
				break
			}
			select {
			case <-time.After(wait):
			case <-r.ctx.Done():
				return
			}
		}
		r.mu.Lock()
		r.queue = r.queue[1:]
		r.mu.Unlock()
	}
}

// retryable reports whether recording may succeed later: the log could
// not be reached. A refusal (the run was superseded, say) is final.
func retryable(err error) bool {
	k := fault.KindOf(err)
	return k == fault.KindUnavailable || k == fault.KindInternal
}
