package api

import (
	"context"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// ClientConn calls one client's own endpoints: all a client agent needs,
// and all its NATS identity allows.
type ClientConn struct {
	c  *Client
	id string
}

// ForClient returns the endpoints of client id.
func (c *Client) ForClient(id string) *ClientConn { return &ClientConn{c: c, id: id} }

// Report reports the client's attributes (registering it with Register).
func (cc *ClientConn) Report(ctx context.Context, r commands.ReportClientInfo) (CommandReply, error) {
	r.ClientID = cc.id
	return cc.c.command(ctx, ClientSubject(cc.id, VerbReport), r)
}

// Task reports what happened to one of the client's task runs.
func (cc *ClientConn) Task(ctx context.Context, r commands.ReportClientTask) (CommandReply, error) {
	r.ClientID = cc.id
	return cc.c.command(ctx, ClientSubject(cc.id, VerbTask), r)
}

// History returns the client's events after a sequence, in order.
func (cc *ClientConn) History(ctx context.Context, after uint64) ([]events.Envelope, error) {
	var out []events.Envelope
	for {
		var page HistoryReply
		if err := cc.c.call(ctx, ClientSubject(cc.id, VerbHistory), HistoryRequest{After: after}, &page); err != nil {
			return nil, err
		}
		for _, w := range page.Events {
			e, err := events.Decode(w.Event, w.Seq)
			if err != nil {
				return nil, fault.Internal(err, "decode event %d", w.Seq)
			}
			out = append(out, e)
			after = w.Seq
		}
		if !page.More || len(page.Events) == 0 {
			return out, nil
		}
	}
}

// LastOffers returns the client's last offers event, if there is one, at
// least as recent as minSeq.
func (cc *ClientConn) LastOffers(ctx context.Context, minSeq uint64) (events.Envelope, bool, error) {
	var r OffersReply
	if err := cc.c.call(ctx, ClientSubject(cc.id, VerbOffers), OffersRequest{MinSeq: minSeq}, &r); err != nil || r.Event == nil {
		return events.Envelope{}, false, err
	}
	e, err := events.Decode(r.Event.Event, r.Event.Seq)
	if err != nil {
		return e, false, fault.Internal(err, "decode offers")
	}
	return e, true, nil
}

// FileChunk returns a piece of a file of a task offered to the client.
func (cc *ClientConn) FileChunk(ctx context.Context, task string, ref events.FileRef, offset int64) ([]byte, error) {
	return cc.FileChunkOffered(ctx, 0, task, ref, offset)
}

// FileChunkOffered is FileChunk for the task as the offers event at
// offersSeq offers it.
func (cc *ClientConn) FileChunkOffered(ctx context.Context, offersSeq uint64, task string, ref events.FileRef, offset int64) ([]byte, error) {
	msg, err := cc.c.request(ctx, ClientSubject(cc.id, VerbFile), FileRequest{TaskID: task, SHA256: ref.SHA256, Offset: offset, OffersSeq: offersSeq})
	if err != nil {
		return nil, err
	}
	return msg.Data, nil
}
