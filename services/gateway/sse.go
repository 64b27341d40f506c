package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	fjs "github.com/flmngr/flmngr/events/jetstream"
	"github.com/flmngr/flmngr/services/logs"
)

// sse writes a Server-Sent Events stream. Every message carries the stream
// sequence it came from as its id, so a client that reconnects with
// Last-Event-ID resumes right after the last message it saw.
type sse struct {
	mu    sync.Mutex
	w     http.ResponseWriter
	rc    *http.ResponseController
	dirty bool // written since the last flush
	err   error
}

// writeTimeout drops a subscriber that cannot take a message in time,
// so a slow reader never holds a consumer up for long.
const writeTimeout = 10 * time.Second

func startSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, rc: http.NewResponseController(w)}
	_ = s.write(": stream open\n\n")
	return s
}

func (s *sse) write(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.w.Write([]byte(text)); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sse) send(id uint64, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.sendRaw(id, event, b)
}

// sendRaw queues a message whose data is already JSON; the flusher sends
// it within flushEvery, so a burst costs one write instead of one each.
func (s *sse) sendRaw(id uint64, event string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := fmt.Fprintf(s.w, "id: %d\nevent: %s\ndata: %s\n\n", id, event, data); err != nil {
		s.err = err
		return err
	}
	s.dirty = true
	return nil
}

// flushEvery bounds how long a message waits in the buffer.
const flushEvery = 5 * time.Millisecond

// run flushes queued messages and comments the stream every 15 s until
// ctx ends.
func (s *sse) run(ctx context.Context) {
	flush := time.NewTicker(flushEvery)
	defer flush.Stop()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			s.mu.Lock()
			if s.dirty && s.err == nil {
				_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
				s.err = s.rc.Flush()
				s.dirty = false
			}
			s.mu.Unlock()
		case <-ping.C:
			if s.write(": ping\n\n") != nil {
				return
			}
		}
	}
}

// resumeFrom is the first sequence a stream sends: after Last-Event-ID
// (or ?since=), else fallback.
func resumeFrom(r *http.Request, fallback uint64) (uint64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("since")
	}
	if v == "" {
		return fallback, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, commands.Invalid("since", "Last-Event-ID and since must be sequence numbers")
	}
	return n + 1, nil
}

// stream runs a follower into an SSE response until the client leaves.
func (g *Gateway) stream(w http.ResponseWriter, r *http.Request, follow func(ctx context.Context, s *sse) error) {
	ctx, cancel := context.WithCancel(r.Context())
	s := startSSE(w)
	g.metrics.StreamOpened()
	defer g.metrics.StreamClosed()
	// The flusher must be done before the handler returns: net/http
	// finishes the response then, and a flush still under way would race
	// with it.
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		s.run(ctx)
	}()
	defer func() {
		cancel()
		<-flushed
	}()
	if err := follow(ctx, s); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		g.log.Debug("stream ended", "path", r.URL.Path, "err", err)
	}
}

// wireEvent is an event as streams and the native timeline carry it.
type wireEvent struct {
	Seq uint64 `json:"seq"`
	events.Envelope
}

// eventsStream streams the event log (?task= or ?client= narrows it). A
// new subscriber gets the events from now on, ?since=0 the whole log.
func (g *Gateway) eventsStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var filters []string
	switch {
	case q.Get("task") != "":
		filters = []string{g.events.AggregateFilter(events.Task(q.Get("task")))}
	case q.Get("client") != "":
		filters = []string{g.events.AggregateFilter(events.Client(q.Get("client")))}
	}
	last, err := g.events.LastSeq(r.Context())
	if err != nil {
		g.writeError(w, r, commands.Unavailable(err, "event log"))
		return
	}
	from, err := resumeFrom(r, last+1)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	g.stream(w, r, func(ctx context.Context, s *sse) error {
		return g.events.FollowRaw(ctx, fjs.FollowOptions{From: from, Filters: filters}, func(seq uint64, data []byte) error {
			typ, ok := eventType(data)
			if !ok {
				e, err := events.Decode(data, seq)
				if err != nil {
					return err
				}
				return s.send(seq, e.Type, wireEvent{Seq: seq, Envelope: e})
			}
			// The stored envelope is sent as it is, with its sequence
			// in front: no decoding, no encoding.
			return s.sendRaw(seq, typ, append(fmt.Appendf(nil, `{"seq":%d,`, seq), data[1:]...))
		})
	})
}

// eventType reads the type of a stored envelope, which the codec writes
// as its second field: {"id":"…","type":"…",….
func eventType(data []byte) (string, bool) {
	const typeKey = `","type":"`
	i := bytes.Index(data, []byte(typeKey))
	if i < 0 || !bytes.HasPrefix(data, []byte(`{"id":"`)) {
		return "", false
	}
	rest := data[i+len(typeKey):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || !strings.Contains(string(rest[:j]), ".v") {
		return "", false
	}
	return string(rest[:j]), true
}

// metricsStream streams a task's completed rounds, from the start of the
// log unless resumed.
func (g *Gateway) metricsStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !events.ValidID(id) {
		g.writeError(w, r, commands.Invalid("id", "invalid task id"))
		return
	}
	from, err := resumeFrom(r, 1)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	filter := g.events.EventSubject(events.Task(id), events.TaskRoundCompletedV1)
	g.stream(w, r, func(ctx context.Context, s *sse) error {
		return g.events.Follow(ctx, fjs.FollowOptions{From: from, Filters: []string{filter}}, func(e events.Envelope) error {
			return s.send(e.Seq, "round", roundOf(e))
		})
	})
}

// logsStream streams what a task's processes print: the server's and
// every client's (?run= picks a run, default the current one).
func (g *Gateway) logsStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	t, err := g.api.Task(r.Context(), id)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	run := r.URL.Query().Get("run")
	if run == "" {
		run = t.Run
	}
	if run == "" {
		run = "1"
	}
	if !events.ValidID(run) {
		g.writeError(w, r, commands.Invalid("run", "invalid run"))
		return
	}
	from, err := resumeFrom(r, 1)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	filter := logs.Prefix + "." + id + "." + run + ".>"
	g.stream(w, r, func(ctx context.Context, s *sse) error {
		return fjs.FollowStream(ctx, g.events.JetStream(), logs.Stream, fjs.FollowOptions{From: from, Filters: []string{filter}}, func(seq uint64, data []byte) error {
			var l logs.Line
			if err := json.Unmarshal(data, &l); err != nil {
				return nil // not ours: skip
			}
			l.Seq = seq
			return s.send(seq, "log", l)
		})
	})
}
