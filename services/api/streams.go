package api

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/logs"
)

// EventReader reads the event log.
type EventReader interface {
	Scan(ctx context.Context, filter string, from uint64, fn func(events.Envelope) error) error
	AggregateFilter(a events.Aggregate) string
	EventsFilter() string
}

// LogReader reads what task processes printed.
type LogReader interface {
	Read(ctx context.Context, q logs.Query) (logs.Page, error)
}

// Uploader stages and commits uploads.
type Uploader interface {
	Part(ctx context.Context, upload string, part int, data []byte) error
	Commit(ctx context.Context, task, upload, name string, parts int, size int64, digest string) (events.FileRef, error)
}

// Bounds of the reading queries.
const (
	maxEventsPage = 1000
	maxWait       = 30 * time.Second
)

var errPageFull = errors.New("page full")

// waitOf bounds a query's wait by the request's own deadline.
func waitOf(ctx context.Context, ms int) time.Duration {
	w := min(time.Duration(max(ms, 0))*time.Millisecond, maxWait)
	if dl, ok := ctx.Deadline(); ok {
		w = min(w, time.Until(dl)-500*time.Millisecond)
	}
	return max(w, 0)
}

func (s *Server) events(ctx context.Context, data []byte) (any, error) {
	r, err := decodeFor[EventsRequest](data, s.cfg.Reader != nil, "serves no event log")
	if err != nil {
		return nil, err
	}
	if r.Task != "" || r.Client != "" {
		if err := s.settle(ctx, Consistency{Latest: true}); err != nil {
			return nil, err
		}
	}
	filter := s.cfg.Reader.EventsFilter()
	switch {
	case r.Task != "" && r.Client != "":
		return nil, fault.Invalid("task", "task and client are exclusive")
	case r.Task != "":
		if _, err := existing(s.views.Task, "task", r.Task); err != nil {
			return nil, err
		}
		filter = s.cfg.Reader.AggregateFilter(events.Task(r.Task))
	case r.Client != "":
		if _, err := existing(s.views.Client, "client", r.Client); err != nil {
			return nil, err
		}
		filter = s.cfg.Reader.AggregateFilter(events.Client(r.Client))
	}
	limit := r.Limit
	if limit <= 0 || limit > maxEventsPage {
		limit = maxEventsPage
	}
	wait := waitOf(ctx, r.WaitMS)
	deadline := time.Now().Add(wait)
	for {
		last, err := s.log.LastSeq(ctx)
		if err != nil {
			return nil, fault.Unavailable(err, "event log unavailable")
		}
		reply := EventsReply{Events: []WireEvent{}, Next: r.After}
		err = s.cfg.Reader.Scan(ctx, filter, r.After+1, func(e events.Envelope) error {
			raw, err := events.Encode(e)
			if err != nil {
				return err
			}
			reply.Events = append(reply.Events, WireEvent{Seq: e.Seq, Event: raw})
			reply.Next = e.Seq
			if len(reply.Events) >= limit {
				return errPageFull
			}
			return nil
		})
		if err != nil && !errors.Is(err, errPageFull) {
			return nil, fault.Unavailable(err, "read the event log")
		}
		if len(reply.Events) > 0 || time.Now().After(deadline) {
			return reply, nil
		}
		// Nothing yet: wait for the log to grow past what was read.
		r.After = max(r.After, last)
		wctx, cancel := context.WithDeadline(ctx, deadline)
		err = s.views.WaitFor(wctx, last+1)
		cancel()
		if err != nil {
			return reply, nil
		}
	}
}

func (s *Server) logs(ctx context.Context, data []byte) (any, error) {
	r, err := decodeFor[LogsRequest](data, s.cfg.Logs != nil, "serves no process output")
	if err != nil {
		return nil, err
	}
	v, err := s.latestTask(ctx, r.Task)
	if err != nil {
		return nil, err
	}
	r.Run = cmp.Or(r.Run, v.Run)
	if r.Run == "" {
		return logs.Page{Lines: []logs.Line{}, Next: r.After}, nil // never started
	}
	for field, id := range map[string]string{"run": r.Run, "origin": r.Origin} {
		if id != "" && !events.ValidID(id) {
			return nil, fault.Invalid(field, "invalid %s %q", field, id)
		}
	}
	page, err := s.cfg.Logs.Read(ctx, logs.Query{Task: r.Task, Run: r.Run, Origin: r.Origin, After: r.After, Limit: r.Limit, Wait: waitOf(ctx, r.WaitMS)})
	if err != nil {
		return nil, fault.Unavailable(err, "read the process output")
	}
	return page, nil
}

func (s *Server) filePart(ctx context.Context, data []byte) (any, error) {
	r, err := decodeFor[FilePart](data, s.cfg.Uploads != nil, "stores no task files")
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Uploads.Part(ctx, r.Upload, r.Part, r.Data); err != nil {
		return nil, err
	}
	return struct{}{}, nil
}

func (s *Server) taskUpload(ctx context.Context, data []byte) (any, error) {
	r, err := decodeFor[UploadRequest](data, s.cfg.Uploads != nil, "stores no task files")
	if err != nil {
		return nil, err
	}
	if _, err := s.latestTask(ctx, r.TaskID); err != nil {
		return nil, err
	}
	return s.cfg.Uploads.Commit(ctx, r.TaskID, r.Upload, r.Name, r.Parts, r.Size, r.SHA256)
}
