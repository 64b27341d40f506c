package events

import (
	"bytes"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"sort"
)

// ErrUnknownType is returned when an event's wire name is not registered.
var ErrUnknownType = errors.New("unknown event type")

// ErrMalformed is returned for bytes that are not an event envelope.
var ErrMalformed = errors.New("malformed event")

// ErrConcurrency is returned by an event store when the aggregate's last
// sequence was not the one expected: someone else appended first.
var ErrConcurrency = errors.New("aggregate changed concurrently")

// ErrAlreadyStored is returned by an event store, with the sequence of the
// last of them, when the events of an append were stored by an earlier
// append of the same event ids (a duplicate of a command).
var ErrAlreadyStored = errors.New("events already stored")

// Payload is the body of one event type. EventType returns its wire name, a
// constant string literal such as "task.created.v1".
type Payload interface {
	EventType() string
}

var registry = map[string]func() Payload{}

func register(factories ...func() Payload) {
	for _, f := range factories {
		name := f().EventType()
		if _, dup := registry[name]; dup {
			panic("events: duplicate registration of " + name)
		}
		registry[name] = f
	}
}

// Types lists every registered wire name, sorted.
func Types() []string {
	out := make([]string, 0, len(registry))
	for name := range registry {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// NewPayload returns a zero payload for a wire name.
func NewPayload(name string) (Payload, error) {
	f, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, name)
	}
	return f(), nil
}

// Encode turns an envelope into its wire form.
func Encode(e Envelope) ([]byte, error) {
	if _, ok := registry[e.Type]; !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, e.Type)
	}
	return json.Marshal(e)
}

// Decode parses the wire form of an envelope and its payload. seq is the
// stream sequence the bytes were read at (zero when unknown).
func Decode(data []byte, seq uint64) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if e.ID == "" || e.Type == "" || e.Time.IsZero() {
		return Envelope{}, fmt.Errorf("%w: missing id, type or time", ErrMalformed)
	}
	if err := e.Aggregate.Validate(); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	p, err := NewPayload(e.Type)
	if err != nil {
		return Envelope{}, err
	}
	if len(e.Payload) > 0 && !bytes.Equal(e.Payload, []byte("null")) {
		// Unknown fields are tolerated: a field added to a payload is
		// optional by construction and older readers may ignore it.
		if err := json.Unmarshal(e.Payload, p); err != nil {
			return Envelope{}, fmt.Errorf("%w: %s payload: %v", ErrMalformed, e.Type, err)
		}
	}
	e.Seq = seq
	e.Event = p
	return e, nil
}
