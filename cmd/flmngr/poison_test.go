package main

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

// Malformed messages written into the event stream with the cloud's own
// identity (the only one that may) are set aside: flmngr up keeps
// serving, says so in its status, starts again, and rebuilds its views
// offline without a panic.
func TestPoisonedLogIsDeadLettered(t *testing.T) {
	s := newSite(t)
	s.startUp()
	s.cli("task", "create", "before", "--host", "127.0.0.1", "--port", "9")
	nc, err := nats.Connect("nats://"+s.listen, admin(t, s.data))
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{``, `{"id":"x"}`, `{"id":"y","type":"task.created.v1","time":"2020-01-01T00:00:00Z","source":"supervisor/vm","aggregate":{"kind":"task","id":"forged"},"payload":{"host":"evil"}} trailing`} {
		if err := nc.Publish("flmngr.ev.task.forged.created.v1", []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	nc.Close()

	s.cli("task", "create", "after", "--host", "127.0.0.1", "--port", "9")
	if out := s.cli("task", "list"); !strings.Contains(out, "before") || !strings.Contains(out, "after") || strings.Contains(out, "forged") {
		t.Fatalf("tasks after the poison:\n%s", out)
	}
	if out := s.cli("status"); !strings.Contains(out, "ALARM: 3 messages of the log are no readable event") {
		t.Fatalf("status says nothing of the poison:\n%s", out)
	}

	s.stopUp()
	s.startUp() // a poisoned log does not stop a start
	s.cli("task", "get", "after")
	s.stopUp()
	out := s.cli("rebuild", "--offline", "--data", s.data)
	if !strings.Contains(out, "views rebuilt from") {
		t.Fatalf("rebuild --offline:\n%s", out)
	}
	s.startUp()
	if out := s.cli("status"); !strings.Contains(out, "ALARM: 3 messages") {
		t.Fatalf("status after a rebuild:\n%s", out)
	}
}
