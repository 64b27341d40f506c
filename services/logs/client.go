package logs

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/taskd"
)

// ClientPrefix is where agents publish their processes' lines:
// flmngr.clogs.<client>.<task>.<run>.
const ClientPrefix = "flmngr.clogs"

// ClientSubject is where client id publishes the lines of a run.
func ClientSubject(id, task, run string) string {
	return ClientPrefix + "." + id + "." + task + "." + run
}

// ClientSink returns the output hook of client id's agent: each line goes
// to the cloud on the client's own subject, without waiting.
func ClientSink(nc *nats.Conn, id string) func(task, run string, m taskd.Message) {
	return func(task, run string, m taskd.Message) {
		l := FromMessage(task, run, ClientOrigin(id), m)
		b, _ := json.Marshal(l)
		_ = nc.Publish(ClientSubject(id, task, run), b)
	}
}

// parseClientSubject reads client, task and run from a client's subject.
func parseClientSubject(subject string) (id, task, run string, ok bool) {
	rest, found := strings.CutPrefix(subject, ClientPrefix+".")
	if !found {
		return "", "", "", false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 || !events.ValidID(parts[0]) || !events.ValidID(parts[1]) || !events.ValidID(parts[2]) {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// clientLine is what the cloud keeps of a client's line: the fields the
// subject proves come from the subject, the time is bounded by the
// cloud's clock.
func clientLine(id, task, run string, data []byte, now time.Time) (Line, bool) {
	var l Line
	if err := json.Unmarshal(data, &l); err != nil {
		return Line{}, false
	}
	l.Task, l.Run, l.Origin, l.Seq = task, run, ClientOrigin(id), 0
	if l.Stream != "stdout" && l.Stream != "stderr" {
		l.Stream = "stdout"
	}
	if len(l.Kind) > 16 {
		l.Kind = "log"
	}
	if l.Time.IsZero() || l.Time.After(now.Add(time.Minute)) || l.Time.Before(now.Add(-24*time.Hour)) {
		l.Time = now
	}
	return l, true
}
