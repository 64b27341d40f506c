package commands

import (
	"strings"
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

// A run waits for its site's approval from the agent's report until it
// is approved, started, refused or no longer offered; a report that
// changes nothing appends nothing.
func TestAwaitingApproval(t *testing.T) {
	st := func(s string) string { return strings.Repeat(s, 64) }
	s := ClientState{Exists: true}
	apply := func(p events.Payload) { s.Apply(events.Envelope{Aggregate: events.Client("c"), Event: p}) }
	decide := func(kind, statement string) []events.Payload {
		t.Helper()
		got, err := ReportClientTask{ClientID: "c", Kind: kind, TaskID: "t", Run: "1", Statement: statement}.decide(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range got {
			apply(p)
		}
		return got
	}
	if got := decide(ClientTaskApproved, st("a")); len(got) != 0 {
		t.Fatalf("approved without a wait: %v", got)
	}
	if got := decide(ClientTaskAwaitingApproval, st("a")); len(got) != 1 {
		t.Fatalf("awaiting: %v", got)
	}
	if got := decide(ClientTaskAwaitingApproval, st("a")); len(got) != 0 {
		t.Fatalf("the same wait again appended %v", got)
	}
	if got := decide(ClientTaskAwaitingApproval, st("b")); len(got) != 1 || len(s.Awaiting) != 1 || s.Awaiting[0].Statement != st("b") {
		t.Fatalf("a new statement: %v, awaiting %+v", got, s.Awaiting)
	}
	if got := decide(ClientTaskApproved, st("a")); len(got) != 0 {
		t.Fatalf("the approval of another statement appended %v", got)
	}
	if got := decide(ClientTaskApproved, st("b")); len(got) != 1 || len(s.Awaiting) != 0 {
		t.Fatalf("approved: %v, awaiting %+v", got, s.Awaiting)
	}
	if _, err := (ReportClientTask{ClientID: "c", Kind: ClientTaskAwaitingApproval, TaskID: "t", Run: "1", Statement: "x"}).decide(s); err == nil {
		t.Fatal("a statement that is no digest was accepted")
	}
	decide(ClientTaskAwaitingApproval, st("c"))
	apply(&events.ClientOffersChanged{Offers: []events.Offer{{TaskID: "u", Run: "1"}}})
	if len(s.Awaiting) != 0 {
		t.Fatalf("a run no longer offered still awaits: %+v", s.Awaiting)
	}
}
