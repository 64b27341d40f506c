package events_test

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
)

// FuzzDecode feeds Decode arbitrary bytes: it never panics, every
// rejection is ErrMalformed or ErrUnknownType, and whatever it accepts
// encodes and decodes again to the same event.
func FuzzDecode(f *testing.F) {
	raw, err := os.ReadFile("testdata/samples.json")
	if err != nil {
		f.Fatal(err)
	}
	var samples map[string]json.RawMessage
	if err := json.Unmarshal(raw, &samples); err != nil {
		f.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	for _, name := range events.Types() {
		p, err := events.NewPayload(name)
		if err != nil {
			f.Fatal(err)
		}
		if err := json.Unmarshal(samples[name], p); err != nil {
			f.Fatalf("%s sample: %v", name, err)
		}
		agg := events.Task("4fe5")
		if strings.HasPrefix(name, "client.") {
			agg = events.Client("guilhermeeec")
		}
		env, err := events.New("evt-1", "test", agg, at, p)
		if err != nil {
			f.Fatal(err)
		}
		wire, err := events.Encode(env)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(wire)
		f.Add(wire[:len(wire)/2])                                                        // truncated
		f.Add([]byte(strings.Replace(string(wire), ".v1", ".v9", 1)))                    // unknown version
		f.Add([]byte(strings.Replace(string(wire), `"payload":{`, `"payload":[{`, 1)))   // payload not an object
		f.Add([]byte(strings.Replace(string(wire), `"kind":"`, `"kind":"x`, 1)))         // unknown aggregate kind
		f.Add([]byte(strings.Replace(string(wire), `"time":"2026`, `"time":"20261`, 1))) // bad time
	}
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `7`, `{"id":"e1"}`, "\xff\xfe\x00",
		`{"id":"e1","type":"task.exploded.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"},"payload":{}}`,
		`{"id":"e1","type":"task.deleted.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"},"payload":null}`,
		`{"id":"e1","type":"task.deleted.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"},"payload":"\u0000"}`,
		`{"id":"e1","type":"task.created.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"},"payload":{"port":1e999}}`,
		`{"id":"e1","type":"task.created.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"},"payload":{"tags":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}}`,
		`{"id":"e1","type":"task.deleted.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"},"requested_at":"bad"}`,
		`{"id":"e1","id":"e2","type":"task.deleted.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"}}`,
		`{"id":"e1","type":"task.deleted.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"}} trailing`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := events.Decode(data, 7)
		if err != nil {
			if !errors.Is(err, events.ErrMalformed) && !errors.Is(err, events.ErrUnknownType) {
				t.Fatalf("Decode(%q): error %v is neither ErrMalformed nor ErrUnknownType", data, err)
			}
			return
		}
		if e.Event == nil || e.Event.EventType() != e.Type || e.Seq != 7 || e.ID == "" || e.Time.IsZero() {
			t.Fatalf("Decode(%q) = %+v", data, e)
		}
		if err := e.Aggregate.Validate(); err != nil {
			t.Fatalf("Decode(%q) accepted aggregate %v: %v", data, e.Aggregate, err)
		}
		// What was accepted survives a round trip through its payload.
		again, err := events.New(e.ID, e.Source, e.Aggregate, e.Time, e.Event)
		if err != nil {
			t.Fatalf("New of a decoded event: %v", err)
		}
		wire, err := events.Encode(again)
		if err != nil {
			t.Fatalf("Encode of a decoded event: %v", err)
		}
		back, err := events.Decode(wire, 7)
		if err != nil || back.Type != e.Type || back.ID != e.ID || back.Aggregate != e.Aggregate {
			t.Fatalf("re-decoding %s: %+v, %v", wire, back, err)
		}
	})
}
