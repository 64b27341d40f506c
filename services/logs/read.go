package logs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/events/eventlog"
)

// Query selects stored lines: those of a run of a task, of one origin
// ("server", "client-<id>") or all, after a sequence of the stream.
type Query struct {
	Task   string `json:"task"`
	Run    string `json:"run,omitempty"`
	Origin string `json:"origin,omitempty"`
	After  uint64 `json:"after,omitempty"`
	Limit  int    `json:"limit,omitempty"`
	// Wait, when no line is there yet, waits that long for one.
	Wait time.Duration `json:"wait_ns,omitempty"`
}

// Page is a page of lines; Next is the After of the next one.
type Page struct {
	Lines []Line `json:"lines"`
	Next  uint64 `json:"next"`
}

// Reader reads stored lines with direct gets.
type Reader struct {
	nc *nats.Conn
}

// NewReader reads through nc.
func NewReader(nc *nats.Conn) *Reader { return &Reader{nc: nc} }

// errPageFull stops a scan whose page is full.
var errPageFull = errors.New("page full")

// maxPage bounds a page.
const maxPage = 1000

func (q Query) filter() string {
	run, origin := q.Run, q.Origin
	run = cmp.Or(run, "*")
	origin = cmp.Or(origin, "*")
	return Subject(q.Task, run, origin)
}

// Read returns the lines matching q, waiting up to q.Wait for the first
// when there is none yet. A line's origin is the one its subject proves.
func (r *Reader) Read(ctx context.Context, q Query) (Page, error) {
	limit := q.Limit
	if limit <= 0 || limit > maxPage {
		limit = maxPage
	}
	page, err := r.scan(ctx, q, limit)
	if err != nil || len(page.Lines) > 0 || q.Wait <= 0 {
		return page, err
	}
	// Nothing yet: wait for the stream to announce a matching line.
	live, err := r.nc.SubscribeSync(LivePrefix + q.filter()[len(Prefix):])
	if err != nil {
		return page, err
	}
	defer live.Unsubscribe()
	// A line stored between the scan and the subscription is not missed.
	if page, err = r.scan(ctx, q, limit); err != nil || len(page.Lines) > 0 {
		return page, err
	}
	wctx, cancel := context.WithTimeout(ctx, q.Wait)
	defer cancel()
	if _, err := live.NextMsgWithContext(wctx); err != nil {
		return page, nil // no line in time: an empty page
	}
	return r.scan(ctx, q, limit)
}

func (r *Reader) scan(ctx context.Context, q Query, limit int) (Page, error) {
	page := Page{Lines: []Line{}, Next: q.After}
	errFull := errPageFull
	err := eventlog.DirectScan(ctx, r.nc, Stream, q.filter(), q.After+1, func(seq uint64, m *nats.Msg) error {
		var l Line
		if json.Unmarshal(m.Data, &l) == nil {
			if task, run, origin, ok := ParseSubject(m.Header.Get(jetstream.SubjectHeader)); ok {
				l.Task, l.Run, l.Origin = task, run, origin
			}
			l.Seq = seq
			page.Lines = append(page.Lines, l)
		}
		page.Next = seq
		if len(page.Lines) >= limit {
			return errFull
		}
		return nil
	})
	if err == errFull {
		err = nil
	}
	return page, err
}
