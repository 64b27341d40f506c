package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/logs"
)

// Server-Sent Events streams. Every message carries the stream sequence
// it came from as its id, so a client that reconnects with Last-Event-ID
// resumes right after the last message it saw. Streams read from hubs
// (hub.go): one consumer per feed, however many streams follow it.

const (
	// writeTimeout drops a subscriber that cannot take a write in time.
	writeTimeout = 10 * time.Second
	// flushEvery bounds how long a message waits in the buffer, so that
	// a burst costs one write instead of one each.
	flushEvery = 5 * time.Millisecond
	// pingEvery comments an idle stream so that proxies keep it.
	pingEvery = 15 * time.Second
	// readBatch is how many messages a stream takes from its hub at once.
	readBatch = 64
)

// sseText is one SSE message.
func sseText(seq uint64, event string, data []byte) []byte {
	b := make([]byte, 0, len(data)+len(event)+40)
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, "\nevent: "...)
	b = append(b, event...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// sseOut writes a stream's response.
type sseOut struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (o sseOut) write(text []byte) error {
	_ = o.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := o.w.Write(text)
	return err
}

func (o sseOut) flush() error {
	_ = o.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	return o.rc.Flush()
}

// end sends a last message saying why the stream ends and how to go on.
func (o sseOut) end(reason string) {
	b, _ := json.Marshal(map[string]string{"reason": reason})
	if o.write(append(append([]byte("event: reconnect\ndata: "), b...), "\n\n"...)) == nil {
		_ = o.flush()
	}
}

// serveStream subscribes to a feed from where the request resumes it
// (see resumeFrom; else from fallback, 0: from now on) and streams it
// until the client leaves. A feed that cannot be followed is answered
// with an error, not with an empty stream.
func (g *Gateway) serveStream(w http.ResponseWriter, r *http.Request, f feed, fallback uint64) {
	from, err := resumeFrom(r, fallback)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	ctx := r.Context()
	sub, err := g.hubs.join(ctx, f, from)
	if err != nil {
		if ctx.Err() == nil {
			g.writeError(w, r, err)
		}
		return
	}
	defer sub.leave()
	g.metrics.StreamOpened()
	defer g.metrics.StreamClosed()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	out := sseOut{w: w, rc: http.NewResponseController(w)}
	if out.write([]byte(": stream open\n\n")) != nil || out.flush() != nil {
		return
	}
	if err := sub.readHistory(ctx, func(m sseMsg) error { return out.write(m.text) }); err != nil {
		if ctx.Err() == nil {
			g.log.Info("stream history failed", "path", r.URL.Path, "err", err)
			out.end("the history could not be read: reconnect with Last-Event-ID to resume")
		}
		return
	}
	if out.flush() != nil {
		return
	}
	g.pump(ctx, sub, out)
}

// pump sends a subscriber's messages as the hub gets them until the
// client leaves or falls too far behind. The first message written arms
// a flush flushEvery later; until then the stream does not wake for
// each new message but takes them all at the flush, so a burst costs a
// stream one wake-up and one write per flushEvery, not one per message.
func (g *Gateway) pump(ctx context.Context, sub *subscription, out sseOut) {
	buf := make([]sseMsg, 0, readBatch)
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	flush := time.NewTimer(flushEvery)
	flush.Stop()
	defer flush.Stop()
	dirty, flushNow := false, false
	for {
		msgs, wake, err := sub.next(buf)
		if err != nil {
			out.end(fmt.Sprintf("this stream fell more than %d messages behind: reconnect with Last-Event-ID to resume", ringSize))
			return
		}
		for _, m := range msgs {
			if out.write(m.text) != nil {
				return
			}
		}
		if len(msgs) == readBatch {
			continue // more are waiting
		}
		if len(msgs) > 0 && !dirty && !flushNow {
			dirty = true
			flush.Reset(flushEvery)
		}
		if flushNow {
			flushNow = false
			if out.flush() != nil {
				return
			}
		}
		if dirty {
			wake = nil // the flush takes what comes meanwhile
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-flush.C:
			dirty, flushNow = false, true
		case <-ping.C:
			if out.write([]byte(": ping\n\n")) != nil || out.flush() != nil {
				return
			}
		}
	}
}

// resumeFrom is the first sequence a stream sends: after Last-Event-ID
// (or ?since=), else fallback (0: from now on).
func resumeFrom(r *http.Request, fallback uint64) (uint64, error) {
	v := r.Header.Get("Last-Event-ID")
	v = cmp.Or(v, r.URL.Query().Get("since"))
	if v == "" {
		return fallback, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fault.Invalid("since", "Last-Event-ID and since must be sequence numbers")
	}
	return n + 1, nil
}

// wireEvent is an event as streams and the native timeline carry it.
type wireEvent struct {
	Seq uint64 `json:"seq"`
	events.Envelope
}

// renderEvent is an event as the events stream sends it: the stored
// envelope as it is, with its sequence in front (no decoding, no
// encoding); one the codec did not write is decoded and encoded again.
func renderEvent(seq uint64, data []byte) []byte {
	if typ, ok := eventType(data); ok {
		return sseText(seq, typ, append(fmt.Appendf(nil, `{"seq":%d,`, seq), data[1:]...))
	}
	e, err := events.Decode(data, seq)
	if err != nil {
		return nil
	}
	b, err := json.Marshal(wireEvent{Seq: seq, Envelope: e})
	if err != nil {
		return nil
	}
	return sseText(seq, e.Type, b)
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

// eventsStream streams the event log (?task= or ?client= narrows it). A
// new subscriber gets the events from now on, ?since=0 the whole log.
func (g *Gateway) eventsStream(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := g.events.EventsFilter()
	for _, by := range []struct {
		param string
		agg   func(string) events.Aggregate
	}{{"task", events.Task}, {"client", events.Client}} {
		if id := q.Get(by.param); id != "" {
			if !events.ValidID(id) {
				g.writeError(w, r, fault.Invalid(by.param, "invalid %s id", by.param))
				return
			}
			filter = g.events.AggregateFilter(by.agg(id))
			break
		}
	}
	g.serveStream(w, r, feed{kind: "events", stream: g.events.Config().Stream, filter: filter, render: renderEvent}, 0)
}

// renderRound is a completed round as the rounds stream sends it.
func renderRound(seq uint64, data []byte) []byte {
	e, err := events.Decode(data, seq)
	if err != nil {
		return nil
	}
	if _, ok := e.Event.(*events.TaskRoundCompleted); !ok {
		return nil
	}
	b, err := json.Marshal(roundOf(e))
	if err != nil {
		return nil
	}
	return sseText(seq, "round", b)
}

// metricsStream streams a task's completed rounds, from the start of the
// log unless resumed.
func (g *Gateway) metricsStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !events.ValidID(id) {
		g.writeError(w, r, fault.Invalid("id", "invalid task id"))
		return
	}
	filter := g.events.EventSubject(events.Task(id), events.TaskRoundCompletedV1)
	g.serveStream(w, r, feed{kind: "rounds", stream: g.events.Config().Stream, filter: filter, render: renderRound}, 1)
}

// renderLog is a line of output as the logs stream sends it; what is not
// a line is skipped.
func renderLog(seq uint64, data []byte) []byte {
	var l logs.Line
	if json.Unmarshal(data, &l) != nil {
		return nil
	}
	l.Seq = seq
	b, err := json.Marshal(l)
	if err != nil {
		return nil
	}
	return sseText(seq, "log", b)
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
	run = cmp.Or(run, t.Run)
	run = cmp.Or(run, "1")
	if !events.ValidID(run) {
		g.writeError(w, r, fault.Invalid("run", "invalid run"))
		return
	}
	filter := logs.Prefix + "." + id + "." + run + ".>"
	g.serveStream(w, r, feed{kind: "logs", stream: logs.Stream, filter: filter, render: renderLog}, 1)
}
