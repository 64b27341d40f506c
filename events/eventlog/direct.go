package eventlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/events"
)

// loadBatch is how many events one direct-get request asks for.
const loadBatch = 512

// Load returns the events of one aggregate stored after sequence after, in
// order. It reads them with batched direct gets: a request and a stream of
// replies, with no consumer to create on the server.
func (l *Log) Load(ctx context.Context, agg events.Aggregate, after uint64) ([]events.Envelope, error) {
	var out []events.Envelope
	err := l.Scan(ctx, l.AggregateFilter(agg), after+1, func(e events.Envelope) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", agg, err)
	}
	return out, nil
}

// Scan calls fn, in order, for every event matching filter from sequence
// from up to the end of the stream as it was when the scan began.
func (l *Log) Scan(ctx context.Context, filter string, from uint64, fn func(events.Envelope) error) error {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return DirectScan(ctx, l.nc, l.cfg.Stream, filter, from, func(seq uint64, msg *nats.Msg) error {
		e, err := events.Decode(msg.Data, seq)
		if err != nil {
			l.poison(seq, msg.Data, err) // not part of any history
			return nil
		}
		return fn(e)
	})
}

// DirectScan reads every message of a stream matching filter from
// sequence from, in order, with batched direct gets: a request and a
// stream of replies each, no consumer on the server. The stream must allow
// direct gets.
func DirectScan(ctx context.Context, nc *nats.Conn, stream, filter string, from uint64, fn func(seq uint64, msg *nats.Msg) error) error {
	from = max(from, 1)
	for {
		next, more, err := scanBatch(ctx, nc, stream, filter, from, fn)
		if err != nil || !more {
			return err
		}
		from = next
	}
}

// scanBatch runs one batched direct get and reports where the next one
// starts and whether there is more.
func scanBatch(ctx context.Context, nc *nats.Conn, stream, filter string, from uint64, fn func(uint64, *nats.Msg) error) (uint64, bool, error) {
	inbox := nc.NewRespInbox()
	// A channel that holds one whole batch and its end marker: a
	// synchronous subscription would allocate room for 64k messages on
	// every load, and loads are frequent.
	ch := make(chan *nats.Msg, loadBatch+2)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return 0, false, err
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(map[string]any{"seq": from, "next_by_subj": filter, "batch": loadBatch})
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, req); err != nil {
		return 0, false, err
	}
	last := from - 1
	for {
		var msg *nats.Msg
		select {
		case msg = <-ch:
		case <-ctx.Done():
			return 0, false, fmt.Errorf("direct get %s from %d: %w", filter, from, ctx.Err())
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "404":
			return 0, false, nil // nothing (more) matches
		case "204": // end of batch
			pending, _ := strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
			return last + 1, pending > 0, nil
		default:
			return 0, false, fmt.Errorf("direct get %s: status %s %s", filter, status, msg.Header.Get("Description"))
		}
		seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return 0, false, errors.New("direct get: reply without a sequence")
		}
		if err := fn(seq, msg); err != nil {
			return 0, false, err
		}
		last = seq
	}
}

// LastEvent returns the last event matching filter, or false when there is
// none.
func (l *Log) LastEvent(ctx context.Context, filter string) (events.Envelope, bool, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	req, _ := json.Marshal(map[string]string{"last_by_subj": filter})
	msg, err := l.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+l.cfg.Stream, req)
	if err != nil {
		return events.Envelope{}, false, fmt.Errorf("last event of %s: %w", filter, err)
	}
	if status := msg.Header.Get("Status"); status == "404" {
		return events.Envelope{}, false, nil
	} else if status != "" {
		return events.Envelope{}, false, fmt.Errorf("last event of %s: status %s", filter, status)
	}
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return events.Envelope{}, false, errors.New("last event: reply without a sequence")
	}
	e, err := events.Decode(msg.Data, seq)
	return e, err == nil, err
}

// Live is a live event delivered by republishing: the event, the previous
// sequence of its subject (to detect gaps) and whether it decoded.
type Live struct {
	Event   events.Envelope
	PrevSeq uint64
}

// LiveSubject is the subject on which stored events matching a filter
// (one built by AggregateFilter, TypeFilter, …) are republished.
func (l *Log) LiveSubject(filter string) string {
	return l.cfg.LivePrefix + filter[len(l.cfg.Prefix):]
}

// ParseLive decodes a republished event.
func ParseLive(msg *nats.Msg) (Live, error) {
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return Live{}, errors.New("live event without a sequence")
	}
	prev, _ := strconv.ParseUint(msg.Header.Get("Nats-Last-Sequence"), 10, 64)
	e, err := events.Decode(msg.Data, seq)
	if err != nil {
		return Live{}, err
	}
	return Live{Event: e, PrevSeq: prev}, nil
}
