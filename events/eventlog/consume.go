package eventlog

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/events"
)

// FollowOptions selects what Follow delivers.
type FollowOptions struct {
	// From is the first stream sequence to deliver (0 or 1: the start).
	From uint64
	// Filters restricts delivery to matching subjects (empty: every event).
	Filters []string
	// Batch is how many messages the client buffers ahead (default 1024).
	Batch int

	skipped *atomic.Int64 // counts what a tail follow read and passed over (tests)
}

// Follow delivers events in stream order, one at a time, from opts.From
// until ctx is done or fn returns an error, which Follow then returns.
// It uses an ordered consumer: nothing is stored on the server and a lost
// connection resumes where it left off.
func (l *Log) Follow(ctx context.Context, opts FollowOptions, fn func(events.Envelope) error) error {
	return l.follow(ctx, opts, 0, l.decoded(fn))
}

// FollowRaw is Follow without decoding: fn gets each event's stream
// sequence and its bytes, which are only valid during the call. Readers
// that decode on several cores use it.
func (l *Log) FollowRaw(ctx context.Context, opts FollowOptions, fn func(seq uint64, data []byte) error) error {
	return l.follow(ctx, opts, 0, fn)
}

// decoded adapts an envelope handler to raw messages. A message that is
// not an event of this version is not the handler's business: it is
// reported (Config.OnPoison) and skipped, and the follow goes on.
func (l *Log) decoded(fn func(events.Envelope) error) func(uint64, []byte) error {
	return func(seq uint64, data []byte) error {
		env, err := events.Decode(data, seq)
		if err != nil {
			l.poison(seq, data, err)
			return nil
		}
		return fn(env)
	}
}

// poison reports a message of the stream that is not a readable event.
func (l *Log) poison(seq uint64, data []byte, err error) {
	if l.cfg.OnPoison != nil {
		l.cfg.OnPoison(seq, data, err)
	}
}

// Heartbeat is how often the server tells a waiting consumer that it is
// still there. A consumer that misses two is pulled from again, and an
// ordered one is created anew: how soon a follower notices that the NATS
// server holding its consumer is gone (nats.go waits 10-30s by default).
const Heartbeat = time.Second

// errCaughtUp stops a follow that has reached its target.
var errCaughtUp = errors.New("caught up")

// Replay delivers every matching event from opts.From up to the stream's
// last matching sequence at the time of the call, then returns that
// sequence. It returns at once when there is nothing to deliver.
func (l *Log) Replay(ctx context.Context, opts FollowOptions, fn func(events.Envelope) error) (uint64, error) {
	target, err := l.lastMatching(ctx, opts.Filters)
	if err != nil {
		return 0, err
	}
	if target == 0 || target < opts.From {
		return target, nil
	}
	err = l.follow(ctx, opts, target, l.decoded(fn))
	if errors.Is(err, errCaughtUp) {
		return target, nil
	}
	return 0, err
}

// lastMatching is the sequence of the last event one of the filters
// matches (any event without filters; zero: none). The follow that
// replays up to it stops there: a later event, matching none of them,
// would never be delivered to say that the replay is over.
func (l *Log) lastMatching(ctx context.Context, filters []string) (uint64, error) {
	if len(filters) == 0 {
		return l.LastSeq(ctx)
	}
	var last uint64
	for _, f := range filters {
		seq, err := l.LastSeqOf(ctx, f)
		if err != nil {
			return 0, err
		}
		last = max(last, seq)
	}
	return last, nil
}

// follow runs an ordered consumer on the event stream; when until > 0 it
// stops with errCaughtUp once an event at or beyond that sequence was
// handled. A follow of the tail with several filters catches up first.
func (l *Log) follow(ctx context.Context, opts FollowOptions, until uint64, fn func(uint64, []byte) error) error {
	if until == 0 && len(opts.Filters) > 1 {
		from, err := l.catchUp(ctx, opts, fn)
		if err != nil {
			return err
		}
		opts.From = from
	}
	return followResuming(ctx, l.js, l.cfg.Stream, l.cfg.Timeout, opts, until, fn)
}

// catchUp delivers the events the filters match from opts.From to the
// last of them now, JetStream picking them, and returns where the tail
// follow starts: past that event and past the stream's end when it
// began. The tail is read with the filters' common prefix (see
// followStream); started at a follower's last event, a follower of rare
// events would read every other event since.
func (l *Log) catchUp(ctx context.Context, opts FollowOptions, fn func(uint64, []byte) error) (uint64, error) {
	var end, last uint64
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		// The end first: an event the filters match up to it is at or
		// before their last event read after.
		var err error
		if end, err = l.LastSeq(ctx); err == nil {
			last, err = l.lastMatching(ctx, opts.Filters)
		}
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
	}
	if last >= max(opts.From, 1) {
		if err := followResuming(ctx, l.js, l.cfg.Stream, l.cfg.Timeout, opts, last, fn); !errors.Is(err, errCaughtUp) {
			return 0, err
		}
	}
	return max(opts.From, end+1, last+1), nil
}

// FollowStream is Log.FollowRaw for any stream: messages in stream order
// from opts.From, until ctx ends or fn fails.
func FollowStream(ctx context.Context, js jetstream.JetStream, stream string, opts FollowOptions, fn func(seq uint64, data []byte) error) error {
	return followResuming(ctx, js, stream, 5*time.Second, opts, 0, fn)
}

// handlerError marks an error the caller's function returned: it ends a
// follow, where anything else (a consumer lost with a node, a stream
// electing its leader) is followed again from where it stopped.
type handlerError struct{ err error }

func (h handlerError) Error() string { return h.err.Error() }
func (h handlerError) Unwrap() error { return h.err }

// followResuming follows a stream, and follows it again after the next
// message it delivered when the consumer is lost, for as long as ctx
// lasts: a follower of the log outlives the NATS node it read from.
func followResuming(ctx context.Context, js jetstream.JetStream, stream string, timeout time.Duration, opts FollowOptions, until uint64, fn func(uint64, []byte) error) error {
	next := opts.From
	wait := 50 * time.Millisecond
	for {
		delivered := false
		err := followStream(ctx, js, stream, timeout, opts, until, func(seq uint64, data []byte) error {
			if err := fn(seq, data); err != nil {
				return handlerError{err}
			}
			next, delivered = seq+1, true
			return nil
		}, func(seq uint64) {
			next, delivered = seq+1, true
			if opts.skipped != nil {
				opts.skipped.Add(1)
			}
		})
		var he handlerError
		switch {
		case errors.As(err, &he):
			return he.err
		case err == nil || errors.Is(err, errCaughtUp) || ctx.Err() != nil:
			return err
		}
		if delivered {
			wait = 50 * time.Millisecond
		}
		opts.From = next
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// followStream follows a stream with one consumer until it is lost, ctx
// ends or fn fails; skipped is told of each event read and passed over.
func followStream(ctx context.Context, js jetstream.JetStream, stream string, timeout time.Duration, opts FollowOptions, until uint64,
	fn func(uint64, []byte) error, skipped func(uint64)) error {
	// A follow that catches up (until > 0) lets JetStream pick the
	// matching events: it skips whole blocks of others. A follow of the
	// tail with several filters takes their common prefix and picks
	// here: JetStream matches several filters against every subject of
	// the stream (one per client and event type, 100,000s of them) each
	// time the consumer is made or finds nothing in a block, and a
	// follower of rare events (the revoker's keys) does that on the
	// busiest logs.
	filters, keep := opts.Filters, func(string) bool { return true }
	if until == 0 && len(filters) > 1 {
		filters, keep = []string{coveringFilter(filters)}, func(subject string) bool { return matchesAny(subject, opts.Filters) }
	}
	// nats.go makes a lost ordered consumer again while holding a lock
	// that Stop and Info also take; left to retry for ever it holds them
	// for ever when JetStream cannot make the consumer. A few tries, then
	// the error reaches the handler below and the follow starts anew.
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, InactiveThreshold: time.Minute, MaxResetAttempts: resetAttempts}
	if opts.From > 1 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = opts.From
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	cons, err := js.OrderedConsumer(cctx, stream, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("follow %v: %w", opts.Filters, err)
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = 1024
	}
	var once sync.Once
	done := make(chan error, 1)
	finish := func(err error) { once.Do(func() { done <- err }) }
	// The handler runs under mu, and not at all once ended is set: when
	// followStream returns, fn is not running and will not run again,
	// whether or not nats.go has stopped the consumer yet.
	var mu sync.Mutex
	var ended bool
	var delivered, busy atomic.Int64
	cc, err := cons.Consume(func(m jetstream.Msg) {
		busy.Store(1)
		defer busy.Store(0)
		delivered.Add(1)
		mu.Lock()
		defer mu.Unlock()
		if ended {
			return
		}
		meta, err := m.Metadata()
		if err != nil {
			ended = true
			finish(fmt.Errorf("follow: message metadata: %w", err))
			return
		}
		seq := meta.Sequence.Stream
		if !keep(m.Subject()) {
			skipped(seq) // a follow made anew starts after it
			return
		}
		if err := fn(seq, m.Data()); err != nil {
			ended = true
			finish(err)
			return
		}
		if until > 0 && seq >= until {
			ended = true
			finish(errCaughtUp)
		}
	}, jetstream.PullMaxMessages(batch), jetstream.PullHeartbeat(Heartbeat), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		// The consumer is lost, or could not be made again (its node is
		// gone and the stream has no leader yet, say): start over from
		// the next message instead of waiting on a consumer that may
		// not come. Any error will do: following anew is cheap and
		// delivers nothing twice.
		finish(fmt.Errorf("follow %v: %w", opts.Filters, err))
	}))
	if err != nil {
		return fmt.Errorf("follow %v: %w", opts.Filters, err)
	}
	defer func() {
		mu.Lock()
		ended = true
		mu.Unlock()
		// Stop waits for a reset of the consumer under way (at most
		// resetAttempts tries against a JetStream that may not answer):
		// it is not waited for.
		go cc.Stop()
	}()
	closed := cc.Closed()
	// A consumer that has messages for us and delivers none (made again on
	// a node that went away, say) is given up and followed anew.
	watch := time.NewTicker(stallCheck)
	defer watch.Stop()
	var seen int64
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-done:
			return err
		case <-closed:
			return fmt.Errorf("follow %v: the consumer stopped", opts.Filters)
		case <-watch.C:
			n := delivered.Load()
			if n != seen || busy.Load() != 0 {
				seen = n
				continue
			}
			pending, err := pendingOf(ctx, cons)
			if err != nil {
				return fmt.Errorf("follow %v: consumer info: %w", opts.Filters, err)
			}
			if pending > 0 {
				return fmt.Errorf("follow %v: the consumer has %d messages and delivers none", opts.Filters, pending)
			}
		}
	}
}

// pendingOf asks how many messages the consumer has for us, within
// stallCheck: Info waits for the lock a reset of the consumer holds, and a
// consumer that cannot answer that soon counts as stalled.
func pendingOf(ctx context.Context, cons jetstream.Consumer) (uint64, error) {
	ictx, cancel := context.WithTimeout(ctx, stallCheck)
	defer cancel()
	type answer struct {
		info *jetstream.ConsumerInfo
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		info, err := cons.Info(ictx)
		ch <- answer{info, err}
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			return 0, a.err
		}
		return a.info.NumPending, nil
	case <-ictx.Done():
		return 0, fmt.Errorf("no answer in %s (the consumer is being made again)", stallCheck)
	}
}

// resetAttempts is how many times nats.go tries to make a lost ordered
// consumer again before the follow gives it up and starts anew.
const resetAttempts = 2

// stallCheck is how often a follower that received nothing checks that
// its consumer has nothing for it.
const stallCheck = 2 * time.Second

// DurableOptions configures a durable consumer shared by every replica of a
// component: each event is handled by one of them and acknowledged after
// the handler returns nil.
type DurableOptions struct {
	Name    string
	Filters []string
	// AckWait is how long a handler may take before the event is handed to
	// another replica (default 30s).
	AckWait time.Duration
	// MaxDeliver bounds redeliveries of an event whose handler keeps
	// failing (default 10).
	MaxDeliver int
	// OnError, when set, is told about handler failures and consumer
	// errors (the event is redelivered after a back-off).
	OnError func(error)
}

// Durable runs a durable consumer until ctx is done. New consumers start at
// the beginning of the stream; existing ones resume after their last
// acknowledged event.
func (l *Log) Durable(ctx context.Context, opts DurableOptions, fn func(context.Context, events.Envelope) error) error {
	if opts.Name == "" {
		return errors.New("durable consumer: a name is required")
	}
	opts.AckWait = cmp.Or(opts.AckWait, 30*time.Second)
	opts.MaxDeliver = cmp.Or(opts.MaxDeliver, 10)
	onErr := opts.OnError
	if onErr == nil {
		onErr = func(error) {}
	}
	cctx, cancel := l.bound(ctx)
	cons, err := l.js.CreateOrUpdateConsumer(cctx, l.cfg.Stream, jetstream.ConsumerConfig{
		Durable:        opts.Name,
		FilterSubjects: opts.Filters,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        opts.AckWait,
		MaxDeliver:     opts.MaxDeliver,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	cancel()
	if err != nil {
		return fmt.Errorf("durable consumer %s: %w", opts.Name, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		meta, err := m.Metadata()
		if err != nil {
			onErr(fmt.Errorf("durable %s: metadata: %w", opts.Name, err))
			_ = m.Term()
			return
		}
		env, err := events.Decode(m.Data(), meta.Sequence.Stream)
		if err != nil {
			l.poison(meta.Sequence.Stream, m.Data(), err)
			_ = m.Term()
			return
		}
		if err := fn(ctx, env); err != nil {
			onErr(fmt.Errorf("durable %s: event %d (%s): %w", opts.Name, env.Seq, env.Type, err))
			_ = m.NakWithDelay(time.Duration(meta.NumDelivered) * 200 * time.Millisecond)
			return
		}
		_ = m.Ack()
	}, jetstream.PullHeartbeat(Heartbeat), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		onErr(fmt.Errorf("durable %s: %w", opts.Name, err))
	}))
	if err != nil {
		return fmt.Errorf("durable consumer %s: %w", opts.Name, err)
	}
	<-ctx.Done()
	cc.Stop()
	<-cc.Closed()
	return nil
}
