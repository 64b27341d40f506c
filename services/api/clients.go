package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// A client agent talks to the cloud only on its own subjects,
// flmngr.client.<id>.<verb>. Its NATS identity may publish to no others
// (see the auth package), so the id in the subject is the id it proved,
// and every endpoint here acts for that id alone.
const ClientPrefix = "flmngr.client"

// Verbs of the per-client endpoints.
const (
	VerbReport  = "report"  // commands.ReportClientInfo
	VerbTask    = "task"    // commands.ReportClientTask
	VerbHistory = "history" // HistoryRequest → HistoryReply
	VerbOffers  = "offers"  // → OffersReply
	VerbFile    = "file"    // FileRequest → the bytes
)

// ClientSubject is the subject of a client's endpoint.
func ClientSubject(clientID, verb string) string { return ClientPrefix + "." + clientID + "." + verb }

// HistoryRequest asks for a client's own events after a sequence.
type HistoryRequest struct {
	After uint64 `json:"after"`
}

// WireEvent is an encoded event with its stream sequence.
type WireEvent struct {
	Seq   uint64          `json:"seq"`
	Event json.RawMessage `json:"event"`
}

// HistoryReply is a page of a client's events; More says there are more
// after the last.
type HistoryReply struct {
	Events []WireEvent `json:"events"`
	More   bool        `json:"more"`
}

// OffersReply carries a client's last offers event (none: Event is nil).
type OffersReply struct {
	Event *WireEvent `json:"event"`
}

// FileRequest asks for a piece of a file of a task offered to the client.
// OffersSeq is the offers event the client acts on: the cloud reads the
// client's offers at least up to it (a replica that is behind is read
// again, not believed).
type FileRequest struct {
	TaskID    string `json:"task_id"`
	SHA256    string `json:"sha256"`
	Offset    int64  `json:"offset"`
	OffersSeq uint64 `json:"offers_seq,omitempty"`
}

// OffersRequest asks for the client's last offers, at least as recent as
// MinSeq.
type OffersRequest struct {
	MinSeq uint64 `json:"min_seq,omitempty"`
}

// ChunkReader reads stored task files piece by piece.
type ChunkReader interface {
	Read(ctx context.Context, reader, task string, ref events.FileRef, offset int64) ([]byte, error)
}

// ClientEvents reads a client's events from the log.
type ClientEvents interface {
	Load(ctx context.Context, agg events.Aggregate, after uint64) ([]events.Envelope, error)
	LoadLatest(ctx context.Context, agg events.Aggregate, after uint64) ([]events.Envelope, error)
	LastEvent(ctx context.Context, filter string) (events.Envelope, bool, error)
	EventSubject(a events.Aggregate, eventType string) string
}

// Page bounds of a history reply.
const (
	historyPage      = 1000
	historyPageBytes = 512 << 10
)

// rawReply is answered as is, not as JSON.
type rawReply []byte

type subjectKey struct{}

// clientOf returns the client id of the per-client subject a request
// came on.
func clientOf(ctx context.Context) string {
	subject, _ := ctx.Value(subjectKey{}).(string)
	return clientOfSubject(subject)
}

// clientOfSubject returns the client id of a per-client subject.
func clientOfSubject(subject string) string {
	rest, ok := strings.CutPrefix(subject, ClientPrefix+".")
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, ".")
	return id
}

// limited rate-limits a per-client endpoint by the subject's client id.
func (s *Server) limited(fn func(context.Context, string, []byte) (any, error)) func(context.Context, []byte) (any, error) {
	return func(ctx context.Context, data []byte) (any, error) {
		id := clientOf(ctx)
		if !events.ValidID(id) {
			return nil, fault.Invalid("user_id", "bad client id in the subject")
		}
		if ok, retry := s.limiter.Allow(id); !ok {
			if s.cfg.OnLimited != nil {
				s.cfg.OnLimited(id)
			}
			return nil, fault.RateLimited(retry, "client %s sends more than %g requests a second; slow down and retry in %s", id, s.cfg.ClientRate, retry.Round(time.Millisecond))
		}
		return fn(ctx, id, data)
	}
}

// own makes a client command act for the subject's client only.
func own[C any](s *Server, set func(*C, string) *string) func(context.Context, string, []byte) (any, error) {
	run := command[C](s, false)
	return func(ctx context.Context, id string, data []byte) (any, error) {
		var c C
		if err := decode(data, &c); err != nil {
			return nil, err
		}
		field := set(&c, id)
		if *field != "" && *field != id {
			return nil, &fault.Error{Kind: fault.KindForbidden, Field: "user_id", Message: fmt.Sprintf("client %s may not act for client %s", id, *field)}
		}
		*field = id
		body, err := json.Marshal(c)
		if err != nil {
			return nil, fault.Internal(err, "encode command")
		}
		return run(ctx, body)
	}
}

func (s *Server) clientEndpoints() []endpoint {
	sub := func(verb string) string { return ClientPrefix + ".*." + verb }
	return []endpoint{
		{"client_own_report", sub(VerbReport), s.limited(own(s, func(c *commands.ReportClientInfo, _ string) *string { return &c.ClientID })), true},
		{"client_own_task", sub(VerbTask), s.limited(own(s, func(c *commands.ReportClientTask, _ string) *string { return &c.ClientID })), true},
		{"client_own_tasks", sub(VerbTasks), s.limited(s.taskReports), true},
		{"client_own_history", sub(VerbHistory), s.limited(s.history), false},
		{"client_own_offers", sub(VerbOffers), s.limited(s.offers), false},
		{"client_own_file", sub(VerbFile), s.limited(s.file), false},
	}
}

func (s *Server) history(ctx context.Context, id string, data []byte) (any, error) {
	r, err := decodeFor[HistoryRequest](data, s.cfg.Events != nil, "serves no client history")
	if err != nil {
		return nil, err
	}
	evs, err := s.cfg.Events.LoadLatest(ctx, events.Client(id), r.After)
	if err != nil {
		return nil, fault.Unavailable(err, "event log unavailable")
	}
	reply := HistoryReply{Events: []WireEvent{}}
	size := 0
	for i, e := range evs {
		if i == historyPage || size > historyPageBytes {
			reply.More = true
			break
		}
		raw, err := events.Encode(e)
		if err != nil {
			return nil, fault.Internal(err, "encode event")
		}
		size += len(raw)
		reply.Events = append(reply.Events, WireEvent{Seq: e.Seq, Event: raw})
	}
	return reply, nil
}

// lastOffers reads client id's last offers event, at least as recent as
// minSeq: a replica that is behind is read again until the request's time
// runs out.
func (s *Server) lastOffers(ctx context.Context, id string, minSeq uint64) (events.Envelope, bool, error) {
	if s.cfg.Events == nil {
		return events.Envelope{}, false, fault.Unavailable(nil, "this deployment serves no offers")
	}
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		e, ok, err := s.cfg.Events.LastEvent(ctx, s.cfg.Events.EventSubject(events.Client(id), events.ClientOffersChangedV1))
		if err != nil {
			return e, false, fault.Unavailable(err, "event log unavailable")
		}
		if minSeq == 0 || (ok && e.Seq >= minSeq) {
			return e, ok, nil
		}
		select {
		case <-ctx.Done():
			return e, false, fault.Unavailable(ctx.Err(), "the log does not have offers %d yet", minSeq)
		case <-time.After(wait):
		}
	}
}

func (s *Server) offers(ctx context.Context, id string, data []byte) (any, error) {
	var r OffersRequest
	if err := decode(data, &r); err != nil {
		return nil, err
	}
	e, ok, err := s.lastOffers(ctx, id, r.MinSeq)
	if err != nil || !ok {
		return OffersReply{}, err
	}
	raw, err := events.Encode(e)
	if err != nil {
		return nil, fault.Internal(err, "encode event")
	}
	return OffersReply{Event: &WireEvent{Seq: e.Seq, Event: raw}}, nil
}

// file serves a piece of a file of a task the client is offered now; any
// other file is refused, whether it exists or not.
func (s *Server) file(ctx context.Context, id string, data []byte) (any, error) {
	r, err := decodeFor[FileRequest](data, s.cfg.Chunks != nil, "serves no task files")
	if err != nil {
		return nil, err
	}
	e, ok, err := s.lastOffers(ctx, id, r.OffersSeq)
	if err != nil {
		return nil, err
	}
	if ok {
		for _, o := range e.Event.(*events.ClientOffersChanged).Offers {
			if o.TaskID != r.TaskID {
				continue
			}
			for _, ref := range o.Files {
				if ref.SHA256 == r.SHA256 {
					b, err := s.cfg.Chunks.Read(ctx, id, r.TaskID, ref, r.Offset)
					return rawReply(b), err
				}
			}
		}
	}
	return nil, &fault.Error{Kind: fault.KindForbidden, Message: fmt.Sprintf("client %s is not offered a task %q with that file", id, r.TaskID)}
}
