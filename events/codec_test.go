package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
)

func loadSamples(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	raw, err := os.ReadFile("testdata/samples.json")
	if err != nil {
		t.Fatal(err)
	}
	var samples map[string]json.RawMessage
	if err := json.Unmarshal(raw, &samples); err != nil {
		t.Fatal(err)
	}
	return samples
}

// TestEveryTypeRoundTrips proves that each registered wire name has a
// sample and survives encode → decode → encode unchanged.
func TestEveryTypeRoundTrips(t *testing.T) {
	samples := loadSamples(t)
	types := events.Types()
	if len(types) != len(samples) {
		t.Errorf("registered %d types, samples cover %d", len(types), len(samples))
	}
	at := time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)
	for _, name := range types {
		t.Run(name, func(t *testing.T) {
			sample, ok := samples[name]
			if !ok {
				t.Fatalf("no sample for %s in testdata/samples.json", name)
			}
			p, err := events.NewPayload(name)
			if err != nil {
				t.Fatal(err)
			}
			if p.EventType() != name {
				t.Fatalf("payload for %s reports type %s", name, p.EventType())
			}
			if err := json.Unmarshal(sample, p); err != nil {
				t.Fatalf("sample: %v", err)
			}
			agg := events.Task("4fe5")
			if strings.HasPrefix(name, "client.") {
				agg = events.Client("guilhermeeec")
			}
			if strings.HasPrefix(name, "enrolment.") {
				agg = events.Enrolment("e7k2m9q4w8x3z5a1")
			}
			env, err := events.New("evt-1", "test", agg, at, p)
			if err != nil {
				t.Fatal(err)
			}
			wire, err := events.Encode(env)
			if err != nil {
				t.Fatal(err)
			}
			got, err := events.Decode(wire, 42)
			if err != nil {
				t.Fatal(err)
			}
			if got.Seq != 42 || got.ID != "evt-1" || got.Type != name || !got.Time.Equal(at) || got.Aggregate != agg || got.Source != "test" {
				t.Fatalf("envelope changed: %+v", got)
			}
			if !reflect.DeepEqual(got.Event, p) {
				t.Fatalf("payload changed:\n got %#v\nwant %#v", got.Event, p)
			}
			again, err := events.Encode(got)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(wire, again) {
				t.Fatalf("re-encoding differs:\n%s\n%s", wire, again)
			}
			// Every field of the sample must survive: nothing is silently dropped.
			var want, have map[string]any
			_ = json.Unmarshal(sample, &want)
			_ = json.Unmarshal(got.Payload, &have)
			for k := range want {
				if _, ok := have[k]; !ok {
					t.Errorf("field %q of the sample was dropped", k)
				}
			}
		})
	}
}

func TestUnknownTypeIsAnError(t *testing.T) {
	if _, err := events.NewPayload("task.exploded.v1"); !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("NewPayload: got %v, want ErrUnknownType", err)
	}
	wire := []byte(`{"id":"e1","type":"task.exploded.v1","time":"2026-11-26T12:00:00Z","source":"x","aggregate":{"kind":"task","id":"a"},"payload":{}}`)
	if _, err := events.Decode(wire, 1); !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("Decode: got %v, want ErrUnknownType", err)
	}
	wrongVersion := bytes.Replace(wire, []byte("task.exploded.v1"), []byte("task.created.v9"), 1)
	if _, err := events.Decode(wrongVersion, 1); !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("Decode of unknown version: got %v, want ErrUnknownType", err)
	}
	env := events.Envelope{ID: "e1", Type: "nope.v1", Time: time.Now(), Aggregate: events.Task("a")}
	if _, err := events.Encode(env); !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("Encode: got %v, want ErrUnknownType", err)
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	cases := map[string]string{
		"truncated":      `{"id":"e1","type":"task.created.v1","ti`,
		"not_json":       `hello`,
		"missing_id":     `{"type":"task.deleted.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"}}`,
		"bad_kind":       `{"id":"e1","type":"task.deleted.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"robot","id":"a"}}`,
		"bad_id":         `{"id":"e1","type":"task.deleted.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"../x"}}`,
		"payload_type":   `{"id":"e1","type":"task.created.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"},"payload":{"port":"error"}}`,
		"payload_scalar": `{"id":"e1","type":"task.created.v1","time":"2026-11-26T12:00:00Z","aggregate":{"kind":"task","id":"a"},"payload":7}`,
	}
	for name, wire := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := events.Decode([]byte(wire), 1); !errors.Is(err, events.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func TestNewRejectsValuePayload(t *testing.T) {
	if _, err := events.New("e", "s", events.Task("a"), time.Now(), valuePayload{}); err == nil {
		t.Fatal("a non-pointer payload was accepted")
	}
}

type valuePayload struct{}

func (valuePayload) EventType() string { return events.TaskDeletedV1 }
