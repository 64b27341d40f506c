package events_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
)

// TestTaskKindIsCompatible proves a task created before task kinds
// existed decodes as a process task and re-encodes byte for byte (no
// "kind" field appears), and that a Flower App task keeps its kind.
func TestTaskKindIsCompatible(t *testing.T) {
	old := []byte(`{"id":"e1","type":"task.created.v1","time":"2026-11-26T12:00:00Z","source":"cli","aggregate":{"kind":"task","id":"a"},"payload":{"host":"localhost","port":8080,"selection_criteria":"","server_arguments":"","client_arguments":null,"files_paths":[],"tags":[]}}`)
	env, err := events.Decode(old, 1)
	if err != nil {
		t.Fatal(err)
	}
	if k := env.Event.(*events.TaskCreated).Kind; k != "" {
		t.Fatalf("an old task decodes with kind %q, want none (a process task)", k)
	}
	// Written again (a replay that re-records it, an export), it still
	// has no kind.
	fresh, err := events.New("e1b", "cli", events.Task("a"), env.Time, env.Event)
	if err != nil {
		t.Fatal(err)
	}
	again, err := events.Encode(fresh)
	if err != nil {
		t.Fatal(err)
	}
	back, err := events.Decode(again, 1)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(back.Payload, []byte(`"kind"`)) {
		t.Fatalf("re-encoding an old task added a kind: %s", back.Payload)
	}
	p := &events.TaskCreated{TaskSpec: events.TaskSpec{Host: "h", Port: 1, Kind: "flower-app"}}
	env, err = events.New("e2", "cli", events.Task("b"), time.Now(), p)
	if err != nil {
		t.Fatal(err)
	}
	wire, err := events.Encode(env)
	if err != nil {
		t.Fatal(err)
	}
	got, err := events.Decode(wire, 2)
	if err != nil {
		t.Fatal(err)
	}
	if k := got.Event.(*events.TaskCreated).Kind; k != "flower-app" {
		t.Fatalf("kind %q after a round trip, want flower-app", k)
	}
}
