package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/metrics"
)

// Streams share their JetStream consumers: every SSE subscriber of one
// feed (a stream, a filter and how its messages are rendered) reads from
// one hub, which follows the stream once with an ordered consumer and
// keeps the last ringSize messages, rendered once, in a ring. Each
// subscriber reads the ring at its own cursor, so the hub never waits
// for anyone; one that falls more than ringSize messages behind has lost
// messages and is dropped (it reconnects with Last-Event-ID). A
// subscriber that asks for history older than the ring reads it first
// with direct gets, up to the hub's position when it joined, then reads
// the ring from there: no gap, no duplicate. The last subscriber to leave
// stops the hub's consumer.

// ringSize is how many messages a hub keeps: how far behind a subscriber
// may fall.
const ringSize = 4096

// feed is what a hub follows.
type feed struct {
	// kind names the rendering ("events", "rounds", "logs").
	kind   string
	stream string
	filter string
	// render turns a stored message into the SSE message sent for it,
	// nil to send nothing.
	render func(seq uint64, data []byte) []byte
}

type feedKey struct{ kind, stream, filter string }

func (f feed) key() feedKey { return feedKey{f.kind, f.stream, f.filter} }

// sseMsg is a rendered message.
type sseMsg struct {
	seq  uint64
	text []byte
}

// hubs are a gateway's hubs by feed.
type hubs struct {
	ctx     context.Context // the gateway's: hubs end with it
	js      jetstream.JetStream
	nc      *nats.Conn
	log     *slog.Logger
	metrics *metrics.Metrics

	mu  sync.Mutex
	all map[feedKey]*hub
}

func newHubs(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, log *slog.Logger, m *metrics.Metrics) *hubs {
	return &hubs{ctx: ctx, js: js, nc: nc, log: log, metrics: m, all: map[feedKey]*hub{}}
}

// hub follows one feed for its subscribers.
type hub struct {
	hs   *hubs
	feed feed
	subs int // guarded by hs.mu
	// ready is closed once the hub follows its feed, or failed to (err).
	ready  chan struct{}
	err    error
	cancel context.CancelFunc

	mu    sync.RWMutex
	ring  []sseMsg // message i is at ring[i%ringSize]
	head  uint64   // messages appended
	pos   uint64   // the stream sequence the hub has read up to
	floor uint64   // the ring holds every message after this sequence
	wake  chan struct{}
}

// active is how many hubs follow their feeds.
func (hs *hubs) active() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.all)
}

// join subscribes to a feed from stream sequence from (0: from now on),
// starting the feed's hub if it has none. It fails when the hub cannot
// follow the feed: the stream or its consumer cannot be had.
func (hs *hubs) join(ctx context.Context, f feed, from uint64) (*subscription, error) {
	hs.mu.Lock()
	h := hs.all[f.key()]
	created := h == nil
	if created {
		hctx, cancel := context.WithCancel(hs.ctx)
		h = &hub{hs: hs, feed: f, ready: make(chan struct{}), cancel: cancel, wake: make(chan struct{})}
		hs.all[f.key()] = h
		go func() {
			if h.err = h.start(hctx); h.err != nil {
				hs.mu.Lock()
				if hs.all[f.key()] == h {
					delete(hs.all, f.key()) // the next subscriber tries again
				}
				hs.mu.Unlock()
			}
			close(h.ready)
		}()
	}
	h.subs++
	hs.mu.Unlock()
	select {
	case <-h.ready:
	case <-ctx.Done():
		hs.leave(h)
		return nil, ctx.Err()
	}
	if h.err != nil {
		hs.leave(h)
		return nil, h.err
	}
	return h.subscribe(from), nil
}

// leave ends a subscription to h; the last one stops it.
func (hs *hubs) leave(h *hub) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h.subs--; h.subs == 0 {
		if hs.all[h.feed.key()] == h {
			delete(hs.all, h.feed.key())
		}
		h.cancel()
	}
}

// start reads where the stream ends and follows it from there; the first
// consumer is made before start returns, so that a subscriber is told
// when its stream cannot be followed.
func (h *hub) start(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := h.hs.js.Stream(sctx, h.feed.stream)
	if err != nil {
		return fault.Unavailable(err, "stream %s", h.feed.stream)
	}
	last := st.CachedInfo().State.LastSeq
	h.pos, h.floor = last, last
	cc, failed, err := h.consume(sctx)
	if err != nil {
		return fault.Unavailable(err, "follow %s %s", h.feed.stream, h.feed.filter)
	}
	h.hs.metrics.FollowerStarted()
	go h.follow(ctx, cc, failed)
	return nil
}

// follow keeps a consumer on the feed until ctx ends, making a new one
// after the last message read when it is lost.
func (h *hub) follow(ctx context.Context, cc jetstream.ConsumeContext, failed <-chan error) {
	defer h.hs.metrics.FollowerStopped()
	wait := 50 * time.Millisecond
	for {
		if cc != nil {
			var err error
			select {
			case <-ctx.Done():
			case err = <-failed:
			case <-cc.Closed():
				err = errors.New("the consumer stopped")
			}
			cc.Stop()
			<-cc.Closed()
			if ctx.Err() != nil {
				return
			}
			h.hs.log.Debug("stream follower lost its consumer", "stream", h.feed.stream, "filter", h.feed.filter, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var err error
		cc, failed, err = h.consume(cctx)
		cancel()
		if err != nil {
			h.hs.log.Debug("stream follower cannot follow", "stream", h.feed.stream, "filter", h.feed.filter, "err", err)
			cc = nil
			continue
		}
		wait = 50 * time.Millisecond
	}
}

// consume makes an ordered consumer from the message after the hub's
// position; failed tells of its loss.
func (h *hub) consume(ctx context.Context) (jetstream.ConsumeContext, <-chan error, error) {
	h.mu.RLock()
	next := h.pos + 1
	h.mu.RUnlock()
	cons, err := h.hs.js.OrderedConsumer(ctx, h.feed.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{h.feed.filter}, DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: next,
		InactiveThreshold: time.Minute})
	if err != nil {
		return nil, nil, fmt.Errorf("follow %s: %w", h.feed.filter, err)
	}
	failed := make(chan error, 1)
	fail := func(err error) {
		select {
		case failed <- err:
		default:
		}
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			fail(err)
			return
		}
		h.append(meta.Sequence.Stream, m.Data())
	}, jetstream.PullMaxMessages(1024), jetstream.PullHeartbeat(eventlog.Heartbeat), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
			errors.Is(err, jetstream.ErrOrderedConsumerReset) || errors.Is(err, jetstream.ErrNoHeartbeat) {
			fail(err)
		}
	}))
	if err != nil {
		return nil, nil, fmt.Errorf("follow %s: %w", h.feed.filter, err)
	}
	return cc, failed, nil
}

// append renders a message and puts it in the ring, waking the
// subscribers; a message at or before the hub's position (read again by
// a new consumer) is dropped.
func (h *hub) append(seq uint64, data []byte) {
	if seq <= h.position() {
		return
	}
	text := h.feed.render(seq, data)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pos = seq
	if text == nil {
		return
	}
	m := sseMsg{seq: seq, text: text}
	if h.head < ringSize {
		h.ring = append(h.ring, m)
	} else {
		i := h.head % ringSize
		h.floor = h.ring[i].seq
		h.ring[i] = m
	}
	h.head++
	close(h.wake)
	h.wake = make(chan struct{})
}

func (h *hub) position() uint64 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.pos
}

// subscription is one subscriber's place in a hub.
type subscription struct {
	h *hub
	// cursor is the next ring message to read.
	cursor uint64
	// from is the first sequence to send: ring messages before it are
	// skipped.
	from uint64
	// history, when not zero, is the last sequence to read with direct
	// gets from from before reading the ring.
	history uint64
}

// subscribe places a subscriber wanting messages from sequence from (0:
// from now on): in the ring when it holds them all, else after a
// history read up to the hub's position.
func (h *hub) subscribe(from uint64) *subscription {
	h.mu.RLock()
	defer h.mu.RUnlock()
	s := &subscription{h: h, cursor: h.head, from: from}
	switch {
	case from == 0 || from > h.pos:
	case from > h.floor:
		tail := h.head - uint64(len(h.ring))
		for s.cursor > tail && h.ring[(s.cursor-1)%ringSize].seq >= from {
			s.cursor--
		}
	default:
		s.history = h.pos
	}
	return s
}

// errLagged ends a subscriber that fell more than ringSize messages
// behind.
var errLagged = errors.New("the subscriber fell too far behind")

// next copies the subscriber's next messages into buf (at most its
// capacity) and moves on; with none, it returns the channel that is
// closed when there are.
func (s *subscription) next(buf []sseMsg) ([]sseMsg, <-chan struct{}, error) {
	h := s.h
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.head-s.cursor > uint64(len(h.ring)) {
		return nil, nil, errLagged
	}
	buf = buf[:0]
	for s.cursor < h.head && len(buf) < cap(buf) {
		if m := h.ring[s.cursor%ringSize]; m.seq >= s.from {
			buf = append(buf, m)
		}
		s.cursor++
	}
	return buf, h.wake, nil
}

// readHistory sends the messages of the feed from s.from up to
// s.history, read with direct gets.
func (s *subscription) readHistory(ctx context.Context, send func(sseMsg) error) error {
	if s.history == 0 {
		return nil
	}
	f := s.h.feed
	err := eventlog.DirectScan(ctx, s.h.hs.nc, f.stream, f.filter, s.from, func(seq uint64, msg *nats.Msg) error {
		if seq > s.history {
			return errCaughtUp
		}
		if text := f.render(seq, msg.Data); text != nil {
			return send(sseMsg{seq: seq, text: text})
		}
		return nil
	})
	if errors.Is(err, errCaughtUp) {
		return nil
	}
	return err
}

var errCaughtUp = errors.New("caught up")

// leave ends the subscription.
func (s *subscription) leave() { s.h.hs.leave(s.h) }
