package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
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
//
// With a journal, what waits survives the agent too: every report is
// written to the journal before it is queued and its acknowledgement
// after, and an agent that starts again sends what its earlier life left
// unacknowledged, first and under the same keys.
type outbox struct {
	send   func(context.Context, pending) error
	log    *slog.Logger
	notify chan struct{}

	mu      sync.Mutex
	queue   []pending
	dropped int
	idle    chan struct{} // closed while the queue is empty
	journal *os.File
	written int64
}

type pending struct {
	Key  string                     `json:"key"`
	At   time.Time                  `json:"at"`
	Info *commands.ReportClientInfo `json:"info,omitempty"`
	Task *commands.ReportClientTask `json:"task,omitempty"`
}

// journalLine is one line of the journal: a report, or the key of one
// the cloud acknowledged.
type journalLine struct {
	Add *pending `json:"add,omitempty"`
	Ack string   `json:"ack,omitempty"`
}

// maxJournal is the size past which the journal is rewritten with only
// what waits.
const maxJournal = 4 << 20

// openJournal loads what an earlier life left in the journal at path and
// keeps appending to it.
func (o *outbox) openJournal(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("outbox journal: %w", err)
	}
	var left []pending
	for line := range bytes.Lines(b) {
		var l journalLine
		if json.Unmarshal(line, &l) != nil {
			continue // a line cut by a crash
		}
		switch {
		case l.Add != nil:
			left = append(left, *l.Add)
		case l.Ack != "":
			left = slices.DeleteFunc(left, func(p pending) bool { return p.Key == l.Ack })
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.queue = append(left, o.queue...)
	if len(o.queue) > 0 {
		o.idle = make(chan struct{})
	}
	if err := o.rewrite(path); err != nil {
		return 0, err
	}
	return len(left), nil
}

// rewrite replaces the journal with the reports that wait; callers hold
// o.mu (or own o alone).
func (o *outbox) rewrite(path string) error {
	if path == "" {
		path = o.journal.Name()
	}
	var buf bytes.Buffer
	for i := range o.queue {
		b, _ := json.Marshal(journalLine{Add: &o.queue[i]})
		buf.Write(append(b, '\n'))
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("outbox journal: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("outbox journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("outbox journal: %w", err)
	}
	if o.journal != nil {
		o.journal.Close()
	}
	o.journal, o.written = f, int64(buf.Len())
	return nil
}

// record appends a line to the journal; callers hold o.mu.
func (o *outbox) record(l journalLine) {
	if o.journal == nil {
		return
	}
	b, _ := json.Marshal(l)
	n, err := o.journal.Write(append(b, '\n'))
	o.written += int64(n)
	if err != nil {
		o.log.Warn("outbox journal", "err", err)
	}
	if o.written > maxJournal {
		if err := o.rewrite(""); err != nil {
			o.log.Warn("outbox journal", "err", err)
		}
	}
}

func (o *outbox) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.journal != nil {
		o.journal.Close()
		o.journal = nil
	}
}

func newOutbox(send func(context.Context, pending) error, log *slog.Logger) *outbox {
	idle := make(chan struct{})
	close(idle)
	return &outbox{send: send, log: log, notify: make(chan struct{}, 1), idle: idle}
}

func (o *outbox) add(p pending) {
	p.Key, p.At = "agent-"+nuid.Next(), time.Now()
	o.mu.Lock()
	if len(o.queue) == 0 {
		o.idle = make(chan struct{})
	}
	if len(o.queue) >= maxOutbox {
		o.record(journalLine{Ack: o.queue[0].Key})
		o.queue = o.queue[1:]
		o.dropped++
		o.log.Warn("outbox full: dropped the oldest report", "dropped", o.dropped)
	}
	o.record(journalLine{Add: &p})
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
		if len(o.queue) > 0 && o.queue[0].Key == head.Key {
			o.queue = o.queue[1:]
			o.record(journalLine{Ack: head.Key})
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
