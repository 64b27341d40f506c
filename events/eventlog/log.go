package eventlog

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/flmngr/flmngr/events"
)

// Config describes the event stream.
type Config struct {
	// Stream is the JetStream stream name (default FLMNGR_EVENTS).
	Stream string
	// Prefix is the first subject tokens of every event (default flmngr.ev).
	Prefix string
	// Replicas is the stream's replication factor (default 1; 3 on a
	// cluster).
	Replicas int
	// Duplicates is the window in which a repeated event id is dropped
	// (default 2m).
	Duplicates time.Duration
	// Timeout bounds each request to JetStream that has no deadline of its
	// own (default 5s).
	Timeout time.Duration
	// OnPoison, when set, is told of every message of the stream that is
	// not a readable event (malformed, or of a type this version does not
	// know): readers skip it, and whoever keeps the views records it.
	OnPoison func(seq uint64, data []byte, err error)
	// LivePrefix is where stored events are republished for lightweight
	// subscribers, such as client agents (default flmngr.live): the event
	// stored on flmngr.ev.X is republished on flmngr.live.X with its
	// sequence and the previous sequence of its subject in headers.
	LivePrefix string
}

// Defaults fills in unset fields.
func (c Config) Defaults() Config {
	c.Stream = cmp.Or(c.Stream, "FLMNGR_EVENTS")
	c.Prefix = cmp.Or(c.Prefix, "flmngr.ev")
	c.Replicas = cmp.Or(c.Replicas, 1)
	c.Duplicates = cmp.Or(c.Duplicates, 2*time.Minute)
	c.Timeout = cmp.Or(c.Timeout, 5*time.Second)
	c.LivePrefix = cmp.Or(c.LivePrefix, "flmngr.live")
	return c
}

// Validate reports whether the configuration is usable.
func (c Config) Validate() error {
	c = c.Defaults()
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("stream replicas must be between 1 and 5, got %d", c.Replicas)
	}
	if strings.ContainsAny(c.Stream, ". *>") {
		return fmt.Errorf("stream name %q may not contain '.', '*', '>' or spaces", c.Stream)
	}
	return nil
}

// Log is the event stream.
type Log struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    Config
}

// Open creates or updates the event stream and returns a Log on it. It is
// safe to call from many processes at once.
func Open(ctx context.Context, nc *nats.Conn, cfg Config) (*Log, error) {
	return open(ctx, nc, cfg, func(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, streamConfig(cfg))
	})
}

// Attach returns a Log on an existing event stream without creating or
// changing it: for tools that read or append but do not own the stream.
func Attach(ctx context.Context, nc *nats.Conn, cfg Config) (*Log, error) {
	return open(ctx, nc, cfg, func(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
		return js.Stream(ctx, cfg.Stream)
	})
}

func open(ctx context.Context, nc *nats.Conn, cfg Config, stream func(context.Context, jetstream.JetStream, Config) (jetstream.Stream, error)) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.Defaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	s, err := stream(ctx, js, cfg)
	for wait := 100 * time.Millisecond; isAPIError(err, jsErrCodeNoSuitablePeers) || isAPIError(err, jsErrCodeClusterNotAvailable); wait = min(2*wait, time.Second) {
		// A cluster still forming (its servers not yet known to each
		// other) has no peers to place the replicas on: ask again.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("event stream %s: %w", cfg.Stream, err)
		case <-time.After(wait):
		}
		s, err = stream(ctx, js, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("event stream %s: %w", cfg.Stream, err)
	}
	return &Log{nc: nc, js: js, stream: s, cfg: cfg}, nil
}

func streamConfig(cfg Config) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:               cfg.Stream,
		Description:        "flmngr event log: every state change of every task and client",
		Subjects:           []string{cfg.Prefix + ".>"},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		Replicas:           cfg.Replicas,
		Duplicates:         cfg.Duplicates,
		AllowDirect:        true,
		AllowAtomicPublish: true,
		DenyDelete:         true,
		DenyPurge:          true,
		RePublish:          &jetstream.RePublish{Source: cfg.Prefix + ".>", Destination: cfg.LivePrefix + ".>"},
	}
}

// JetStream returns the JetStream context the log uses.
func (l *Log) JetStream() jetstream.JetStream { return l.js }

// Conn returns the NATS connection the log uses.
func (l *Log) Conn() *nats.Conn { return l.nc }

// Config returns the log's configuration with defaults applied.
func (l *Log) Config() Config { return l.cfg }

// Subject returns the subject an event is stored on.
func (l *Log) Subject(e events.Envelope) (string, error) {
	kind, name, ok := strings.Cut(e.Type, ".")
	if !ok || kind != e.Aggregate.Kind {
		return "", fmt.Errorf("event type %q does not belong to a %s aggregate", e.Type, e.Aggregate.Kind)
	}
	return l.cfg.Prefix + "." + kind + "." + e.Aggregate.ID + "." + name, nil
}

// AggregateFilter is the subject filter of every event of one aggregate.
func (l *Log) AggregateFilter(a events.Aggregate) string {
	return l.cfg.Prefix + "." + a.Kind + "." + a.ID + ".>"
}

// EventsFilter is the subject filter of every event.
func (l *Log) EventsFilter() string { return l.cfg.Prefix + ".>" }

// KindFilter is the subject filter of every event of one aggregate kind.
func (l *Log) KindFilter(kind string) string {
	return l.cfg.Prefix + "." + kind + ".>"
}

// TypeFilter is the subject filter of one event type over all aggregates of
// its kind.
func (l *Log) TypeFilter(eventType string) string {
	kind, name, _ := strings.Cut(eventType, ".")
	return l.cfg.Prefix + "." + kind + ".*." + name
}

// Append stores events of one aggregate, failing with an error that wraps
// events.ErrConcurrency when the aggregate's last stored sequence is not
// expected (zero: the aggregate has no events yet). Several events are
// stored atomically. It returns the sequence of the last event. An event
// whose id was already stored within the duplicate window is not stored
// again; its original sequence is returned.
func (l *Log) Append(ctx context.Context, expected uint64, envs ...events.Envelope) (uint64, error) {
	if len(envs) == 0 {
		return 0, errors.New("append: no events")
	}
	agg := envs[0].Aggregate
	msgs := make([]*nats.Msg, len(envs))
	for i, e := range envs {
		if e.Aggregate != agg {
			return 0, fmt.Errorf("append: events of %s and %s in one call", agg, e.Aggregate)
		}
		subj, err := l.Subject(e)
		if err != nil {
			return 0, err
		}
		data, err := events.Encode(e)
		if err != nil {
			return 0, err
		}
		msgs[i] = &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
		msgs[i].Header.Set(jetstream.MsgIDHeader, e.ID)
	}
	msgs[0].Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(expected, 10))
	msgs[0].Header.Set(expectedLastSubjSeqSubjectHeader, l.AggregateFilter(agg))
	ctx, cancel := l.bound(ctx)
	defer cancel()
	wait := 25 * time.Millisecond
	for again := false; ; again = true {
		var seq uint64
		var retried bool
		var err error
		if len(msgs) == 1 {
			seq, retried, err = l.appendOne(ctx, msgs[0])
		} else {
			seq, err = l.appendBatch(ctx, msgs)
		}
		retried = retried || again
		if !errors.Is(err, events.ErrConcurrency) && !isAPIError(err, jsErrCodeBatchDuplicateMsgID) {
			return seq, err
		}
		// The stream checks the expected sequence before its duplicate
		// window, so events already stored are refused as a conflict:
		// then ours stand right after expected. Stored by this call's
		// own earlier attempt (its answer lost under load), the append
		// succeeded; by another call, it is a duplicate. And a stream
		// leader that has not applied all it committed (just elected, or
		// starved of CPU) refuses a right expectation: nothing stands
		// after expected at the leader, so the append is tried again.
		stored, ok := l.after(ctx, agg, expected)
		switch {
		case !ok:
			return seq, err
		case len(stored) == 0 && ctx.Err() == nil:
			select {
			case <-ctx.Done():
				return seq, err
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
			continue
		case ours(stored, envs) && retried:
			return stored[len(envs)-1].Seq, nil
		case ours(stored, envs):
			return stored[len(envs)-1].Seq, events.ErrAlreadyStored
		}
		return seq, err
	}
}

// after loads the events of agg after expected as the stream's leader has
// them, waiting out a slow read within ctx (the log answered the append,
// so this read is worth waiting for).
func (l *Log) after(ctx context.Context, agg events.Aggregate, expected uint64) ([]events.Envelope, bool) {
	stored, err := l.LoadLatest(ctx, agg, expected)
	for wait := 25 * time.Millisecond; err != nil; wait = min(2*wait, time.Second) {
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(wait):
		}
		stored, err = l.LoadLatest(ctx, agg, expected)
	}
	return stored, true
}

// ours reports whether envs are the first of stored.
func ours(stored, envs []events.Envelope) bool {
	if len(stored) < len(envs) {
		return false
	}
	for i, e := range envs {
		if stored[i].ID != e.ID {
			return false
		}
	}
	return true
}

// appendAttempt bounds one attempt to store an event; the stream's
// duplicate window makes another attempt with the same event id safe.
const appendAttempt = time.Second

// appendOne publishes one event, again and again while the outcome is
// unknown and ctx allows: a stream leader that went away, a connection
// that moves to another server of the cluster. An attempt that stored the
// event although its acknowledgement was lost is answered, the next time,
// as a duplicate with the event's sequence.
//
// retried says an attempt followed one whose outcome is unknown.
func (l *Log) appendOne(ctx context.Context, m *nats.Msg) (seq uint64, retried bool, err error) {
	wait := 25 * time.Millisecond
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, appendAttempt)
		// No responders are retried here, sooner than nats.go would.
		ack, err := l.js.PublishMsg(actx, m, jetstream.WithRetryAttempts(0))
		cancel()
		retried = attempt > 0
		if err == nil {
			return ack.Sequence, retried, nil
		}
		if !transient(err) || ctx.Err() != nil {
			return 0, retried, mapPublishError(err)
		}
		select {
		case <-ctx.Done():
			return 0, retried, mapPublishError(err)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// transient reports whether a publish failed in a way that may go away by
// itself: no answer (yet), no stream leader, a connection failing over.
func transient(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jsErrCodeClusterNotAvailable, jsErrCodeDuplicateMessageInProcess:
			return true
		}
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrConnectionReconnecting) || errors.Is(err, nats.ErrDisconnected)
}

// JetStream API error codes nats.go does not name.
const (
	jsErrCodeClusterNotAvailable       jetstream.ErrorCode = 10008 // JetStream system temporarily unavailable
	jsErrCodeNoSuitablePeers           jetstream.ErrorCode = 10005 // no suitable peers for placement (a cluster forming)
	jsErrCodeDuplicateMessageInProcess jetstream.ErrorCode = 10158 // an earlier attempt is being stored
	jsErrCodeBatchDuplicateMsgID       jetstream.ErrorCode = 10201 // a batch holds an event id already stored
)

func isAPIError(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

const (
	expectedLastSubjSeqSubjectHeader = "Nats-Expected-Last-Subject-Sequence-Subject"
	batchIDHeader                    = "Nats-Batch-Id"
	batchSeqHeader                   = "Nats-Batch-Sequence"
	batchCommitHeader                = "Nats-Batch-Commit"
)

// appendBatch uses JetStream's atomic batch publish: all messages are
// stored, contiguously, or none is.
func (l *Log) appendBatch(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	id := nuid.Next()
	for i, m := range msgs {
		m.Header.Set(batchIDHeader, id)
		m.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
		if i < len(msgs)-1 {
			if err := l.nc.PublishMsg(m); err != nil {
				return 0, fmt.Errorf("append batch: %w", err)
			}
		}
	}
	last := msgs[len(msgs)-1]
	last.Header.Set(batchCommitHeader, "1")
	reply, err := l.nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		return 0, fmt.Errorf("append batch: %w", err)
	}
	var ack struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     uint16 `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Seq   uint64 `json:"seq"`
		Count int    `json:"count"`
	}
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return 0, fmt.Errorf("append batch: bad reply %q: %w", reply.Data, err)
	}
	if ack.Error != nil {
		return 0, mapPublishError(&jetstream.APIError{Code: ack.Error.Code, ErrorCode: jetstream.ErrorCode(ack.Error.ErrCode), Description: ack.Error.Description})
	}
	if ack.Count != len(msgs) {
		return 0, fmt.Errorf("append batch: stored %d of %d events", ack.Count, len(msgs))
	}
	return ack.Seq, nil
}

func mapPublishError(err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return fmt.Errorf("%w: %s", events.ErrConcurrency, apiErr.Description)
		}
	}
	return fmt.Errorf("append: %w", err)
}

// bound gives ctx the log's default timeout unless it already has a
// deadline.
func (l *Log) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, l.cfg.Timeout)
}

// LastSeq returns the sequence of the last event in the stream (zero when
// it is empty).
func (l *Log) LastSeq(ctx context.Context) (uint64, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.LastSeq, nil
}

// Size returns how many events the stream holds and their bytes on disk.
func (l *Log) Size(ctx context.Context) (msgs, bytes uint64, err error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	info, err := l.stream.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("stream info: %w", err)
	}
	return info.State.Msgs, info.State.Bytes, nil
}

// LastSeqOf returns the sequence of the last event matching a subject filter
// (zero when there is none).
func (l *Log) LastSeqOf(ctx context.Context, filter string) (uint64, error) {
	msg, err := l.requestLast(ctx, "$JS.API.DIRECT.GET.", filter)
	if err != nil {
		return 0, fmt.Errorf("last event of %s: %w", filter, err)
	}
	if status := msg.Header.Get("Status"); status != "" {
		if status == "404" {
			return 0, nil
		}
		return 0, fmt.Errorf("last event of %s: status %s %s", filter, status, msg.Header.Get("Description"))
	}
	seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("last event of %s: bad sequence header: %w", filter, err)
	}
	return seq, nil
}

// requestLast asks JetStream's API, api ("$JS.API.DIRECT.GET." or
// "$JS.API.STREAM.MSG.GET."), for the stream's last message matching
// filter.
func (l *Log) requestLast(ctx context.Context, api, filter string) (*nats.Msg, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	req, _ := json.Marshal(map[string]string{"last_by_subj": filter})
	return l.nc.RequestWithContext(ctx, api+l.cfg.Stream, req)
}

// Get returns the event stored at seq.
func (l *Log) Get(ctx context.Context, seq uint64) (events.Envelope, error) {
	ctx, cancel := l.bound(ctx)
	defer cancel()
	m, err := l.stream.GetMsg(ctx, seq)
	if err != nil {
		return events.Envelope{}, fmt.Errorf("get event %d: %w", seq, err)
	}
	return events.Decode(m.Data, m.Sequence)
}

// EventSubject is the subject events of one type of one aggregate are
// stored on.
func (l *Log) EventSubject(a events.Aggregate, eventType string) string {
	_, name, _ := strings.Cut(eventType, ".")
	return l.cfg.Prefix + "." + a.Kind + "." + a.ID + "." + name
}
