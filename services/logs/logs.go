// Package logs keeps the output of task processes (servers and clients)
// in a JetStream stream of its own, bounded in age and size, so that it can
// be followed live and replayed from any point without ever mixing into
// the event log.
//
// Servers' lines are published by the cloud's supervisor. A client agent
// publishes its processes' lines on its own subject (ClientSubject); the
// cloud takes them in (Ingest) within a rate per client, for runs that
// client was offered, and stores them under the origin the subject proves,
// whatever the line says. Every (task, run, origin) keeps at most
// MaxLinesPerProcess lines, so no producer can evict another's output.
// Lines are published asynchronously and dropped, with a count, when the
// stream cannot keep up: a chatty task never slows its supervisor down.
package logs

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/taskd"
)

// Stream and subjects: flmngr.logs.<task>.<run>.<origin>, origin "server"
// or "client-<id>"; every stored line is announced (headers only) on
// flmngr.logslive.<task>.<run>.<origin>.
const (
	Stream     = "FLMNGR_LOGS"
	Prefix     = "flmngr.logs"
	LivePrefix = "flmngr.logslive"
)

// MaxLinesPerProcess bounds the lines kept of one process of one run.
const MaxLinesPerProcess = 100_000

// Line is one line of a task process.
type Line struct {
	Time   time.Time `json:"time"`
	Task   string    `json:"task"`
	Run    string    `json:"run"`
	Origin string    `json:"origin"`
	Stream string    `json:"stream"`
	Kind   string    `json:"kind"`
	Text   string    `json:"text"`
	Seq    uint64    `json:"seq,omitempty"`
}

// Subject is where the lines of one process of a run go.
func Subject(task, run, origin string) string {
	return Prefix + "." + task + "." + run + "." + origin
}

// ParseSubject reads task, run and origin from a stored line's subject.
func ParseSubject(subject string) (task, run, origin string, ok bool) {
	rest, found := strings.CutPrefix(subject, Prefix+".")
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// ClientOrigin is the origin of client id's processes.
func ClientOrigin(id string) string { return "client-" + id }

// MaxBytes bounds the log stream by default.
const MaxBytes = 1 << 30

// Open creates or updates the log stream, at most maxBytes (0: MaxBytes).
func Open(ctx context.Context, js jetstream.JetStream, replicas int, maxBytes int64) error {
	err := eventlog.OpenStream(ctx, js, jetstream.StreamConfig{
		Name:              Stream,
		Description:       "flmngr task process output, kept a day",
		Subjects:          []string{Prefix + ".>"},
		Replicas:          replicas,
		MaxAge:            24 * time.Hour,
		MaxBytes:          maxBytes,
		MaxMsgsPerSubject: MaxLinesPerProcess,
		MaxMsgSize:        128 << 10,
		Discard:           jetstream.DiscardOld,
		RePublish:         &jetstream.RePublish{Source: Prefix + ".>", Destination: LivePrefix + ".>", HeadersOnly: true},
	}, MaxBytes)
	if err != nil {
		return fmt.Errorf("log stream: %w", err)
	}
	return nil
}

// Publisher publishes lines without waiting.
type Publisher struct {
	js      jetstream.JetStream
	dropped atomic.Int64
}

// maxPending bounds unacknowledged publishes; beyond it lines are dropped.
const maxPending = 4096

// NewPublisher publishes through js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Sink returns an output hook for the processes of one origin.
func (p *Publisher) Sink(origin string) func(task, run string, m taskd.Message) {
	return func(task, run string, m taskd.Message) {
		p.Publish(FromMessage(task, run, origin, m))
	}
}

// FromMessage is the line of a process's message.
func FromMessage(task, run, origin string, m taskd.Message) Line {
	return Line{Time: time.Now().UTC(), Task: task, Run: run, Origin: origin, Stream: m.Stream, Kind: string(m.Kind), Text: text(m)}
}

func text(m taskd.Message) string {
	switch m.Kind {
	case taskd.KindModel, taskd.KindTrigger:
		return m.String()
	}
	return m.Text
}

// Publish sends a line, or drops it when too many are in flight.
func (p *Publisher) Publish(l Line) {
	if p == nil {
		return
	}
	if p.js.PublishAsyncPending() >= maxPending {
		p.dropped.Add(1)
		return
	}
	b, _ := json.Marshal(l)
	if _, err := p.js.PublishAsync(Subject(l.Task, l.Run, l.Origin), b); err != nil {
		p.dropped.Add(1)
	}
}

// Dropped counts lines that were not published.
func (p *Publisher) Dropped() int64 { return p.dropped.Load() }
