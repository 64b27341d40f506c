package eventlog

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/events"
)

// appendWindow bounds the appends of one AppendEach awaiting their
// acknowledgement, so that several at once stay below nats.go's own bound
// on a connection's pending async publishes (4,000), past which it
// refuses to publish.
const appendWindow = 256

// AppendEach stores events of different aggregates, envs[i] if its
// aggregate's last stored sequence is expected[i] (zero: none), pipelined: an event is sent before the ones ahead of
// it are acknowledged, so thousands cost about what one round trip and
// the stream's own work on each do, not a round trip each. Each event is
// stored or refused on its own, as Append would store it alone; seqs[i]
// is the sequence of envs[i] when errs[i] is nil. A refused expected
// sequence is an error wrapping events.ErrConcurrency, an event already
// stored one wrapping events.ErrAlreadyStored; any other error leaves the
// outcome unknown, and the caller appends that event again with Append
// (its id makes that safe).
func (l *Log) AppendEach(ctx context.Context, expected []uint64, envs []events.Envelope) (seqs []uint64, errs []error) {
	seqs, errs = make([]uint64, len(envs)), make([]error, len(envs))
	// Without a deadline, each acknowledgement is awaited for the log's
	// timeout: thousands of appends take longer than one does.
	_, bounded := ctx.Deadline()
	futures := make([]jetstream.PubAckFuture, len(envs))
	await := func(i int) {
		f := futures[i]
		if f == nil {
			return
		}
		var timeout <-chan time.Time
		if !bounded {
			t := time.NewTimer(l.cfg.Timeout)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-timeout:
			errs[i] = fmt.Errorf("append: %w", context.DeadlineExceeded)
		case ack := <-f.Ok():
			seqs[i] = ack.Sequence
			if ack.Duplicate {
				errs[i] = events.ErrAlreadyStored
			}
		case err := <-f.Err():
			errs[i] = mapPublishError(err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("append: %w", ctx.Err())
		}
	}
	for i, e := range envs {
		if i >= appendWindow {
			await(i - appendWindow)
		}
		m, err := l.message(expected[i], e)
		if err == nil {
			futures[i], err = l.js.PublishMsgAsync(m, jetstream.WithRetryAttempts(0))
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				// Other callers fill the connection's pipeline: wait for
				// this call's own appends, then try again.
				for j := max(0, i-appendWindow+1); j < i; j++ {
					await(j)
					futures[j] = nil
				}
				futures[i], err = l.js.PublishMsgAsync(m, jetstream.WithRetryAttempts(0))
			}
		}
		if err != nil {
			errs[i] = fmt.Errorf("append: %w", err)
		}
	}
	for i := max(0, len(envs)-appendWindow); i < len(envs); i++ {
		await(i)
	}
	return seqs, errs
}

// message is the message that stores e if its aggregate's last stored
// sequence is expected.
func (l *Log) message(expected uint64, e events.Envelope) (*nats.Msg, error) {
	subj, err := l.Subject(e)
	if err != nil {
		return nil, err
	}
	data, err := events.Encode(e)
	if err != nil {
		return nil, err
	}
	if e.ID == "" {
		return nil, errors.New("event without an id")
	}
	m := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
	m.Header.Set(jetstream.MsgIDHeader, e.ID)
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expected, 10))
	m.Header.Set(expectedLastSubjSeqSubjectHeader, l.AggregateFilter(e.Aggregate))
	return m, nil
}
