package commands

import (
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
)

// A client an operator registered is never seen until its agent speaks;
// then it is online, and presence takes over.
func TestClientSeenOnlyThroughItsAgent(t *testing.T) {
	var s ClientState
	at := func(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
	s.Apply(events.Envelope{Seq: 1, Time: at(1), Source: "cli", Aggregate: events.Client("c"), Event: &events.ClientRegistered{}})
	if s.Online || !s.SeenAt.IsZero() {
		t.Fatalf("registered by an operator: online %v, seen at %v; want never seen", s.Online, s.SeenAt)
	}
	s.Apply(events.Envelope{Seq: 2, Time: at(2), Source: "cli", Aggregate: events.Client("c"), Event: &events.ClientInfoReported{}})
	if s.Online {
		t.Fatal("an operator's report made the client online")
	}
	s.Apply(events.Envelope{Seq: 3, Time: at(3), Source: AgentSource("c"), Aggregate: events.Client("c"), Event: &events.ClientInfoReported{}})
	if !s.Online || !s.SeenAt.Equal(at(3)) {
		t.Fatalf("after its agent's report: online %v, seen at %v", s.Online, s.SeenAt)
	}
	s.Apply(events.Envelope{Seq: 4, Time: at(20), Source: "presence", Aggregate: events.Client("c"), Event: &events.ClientDisconnected{LastSeen: at(5)}})
	if s.Online || !s.SeenAt.Equal(at(5)) {
		t.Fatalf("after going silent: online %v, seen at %v", s.Online, s.SeenAt)
	}
	// The agent's delayed reports do not bring it back: presence does.
	s.Apply(events.Envelope{Seq: 5, Time: at(21), Source: AgentSource("c"), Aggregate: events.Client("c"), Event: &events.ClientTaskStarted{TaskID: "t", Run: "1"}})
	if s.Online || !s.SeenAt.Equal(at(21)) {
		t.Fatalf("after a late report: online %v, seen at %v", s.Online, s.SeenAt)
	}
	s.Apply(events.Envelope{Seq: 6, Time: at(22), Source: "presence", Aggregate: events.Client("c"), Event: &events.ClientReconnected{}})
	if !s.Online {
		t.Fatal("reconnected but not online")
	}
}
