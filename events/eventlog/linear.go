package eventlog

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/flmngr/flmngr/events"
)

// Direct gets may be answered by any replica of the stream, and a replica
// may be behind the leader (it was down, it is catching up): what it
// answers is true, but may not be the latest. A component that decides on
// what it reads reads with LoadUntil (it knows the event that made it
// look) or LoadLatest (it does not).

// LeaderLastSeqOf returns the sequence of the last event matching filter
// as the stream's leader knows it (zero when there is none): a read no
// lagging replica answers.
func (l *Log) LeaderLastSeqOf(ctx context.Context, filter string) (uint64, error) {
	msg, err := l.requestLast(ctx, "$JS.API.STREAM.MSG.GET.", filter)
	if err != nil {
		return 0, fmt.Errorf("last event of %s at the stream leader: %w", filter, err)
	}
	var reply struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Seq uint64 `json:"seq"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &reply); err != nil {
		return 0, fmt.Errorf("last event of %s at the stream leader: bad reply: %w", filter, err)
	}
	switch {
	case reply.Error != nil && reply.Error.ErrCode == jsErrCodeNoMessageFound:
		return 0, nil
	case reply.Error != nil:
		return 0, fmt.Errorf("last event of %s at the stream leader: %s (%d)", filter, reply.Error.Description, reply.Error.ErrCode)
	case reply.Message == nil:
		return 0, fmt.Errorf("last event of %s at the stream leader: empty reply", filter)
	}
	return reply.Message.Seq, nil
}

// jsErrCodeNoMessageFound is JetStream's "no message found".
const jsErrCodeNoMessageFound = 10037

// LoadUntil loads the events of agg after a sequence, as Load does, and
// reads again while they do not reach minSeq (the replica that answered is
// behind), until ctx ends.
func (l *Log) LoadUntil(ctx context.Context, agg events.Aggregate, after, minSeq uint64) ([]events.Envelope, error) {
	wait := 10 * time.Millisecond
	for {
		evs, err := l.Load(ctx, agg, after)
		if err != nil {
			return nil, err
		}
		if minSeq <= after || (len(evs) > 0 && evs[len(evs)-1].Seq >= minSeq) {
			return evs, nil
		}
		select {
		case <-ctx.Done():
			got := after
			if len(evs) > 0 {
				got = evs[len(evs)-1].Seq
			}
			return nil, fmt.Errorf("load %s: the log read reaches %d, not %d: %w", agg, got, minSeq, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// LoadLatest loads the events of agg after a sequence up to the last one
// the stream's leader has: what a decision must be made on.
func (l *Log) LoadLatest(ctx context.Context, agg events.Aggregate, after uint64) ([]events.Envelope, error) {
	last, err := l.LeaderLastSeqOf(ctx, l.AggregateFilter(agg))
	if err != nil {
		return nil, err
	}
	ctx, cancel := l.bound(ctx)
	defer cancel()
	return l.LoadUntil(ctx, agg, after, last)
}
