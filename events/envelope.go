package events

import (
	"fmt"
	json "github.com/goccy/go-json"
	"reflect"
	"time"
)

// Aggregate kinds. An aggregate is the unit of consistency: every event
// belongs to exactly one and commands on one aggregate are serialised by the
// expected sequence of its subject.
const (
	KindTask   = "task"
	KindClient = "client"
)

// Aggregate names the entity an event belongs to.
type Aggregate struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Task returns the aggregate of task id.
func Task(id string) Aggregate { return Aggregate{Kind: KindTask, ID: id} }

// Client returns the aggregate of client id.
func Client(id string) Aggregate { return Aggregate{Kind: KindClient, ID: id} }

func (a Aggregate) String() string { return a.Kind + "/" + a.ID }

// ValidID reports whether id may name a task or a client: 1-64 letters,
// digits, '_' or '-', starting with a letter or digit
// (^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$). Such an id is safe as a NATS subject
// token, a file name and a URL path segment.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '_' || c == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// Validate reports whether the aggregate has a known kind and a valid id.
func (a Aggregate) Validate() error {
	if a.Kind != KindTask && a.Kind != KindClient && a.Kind != KindEnrolment {
		return fmt.Errorf("unknown aggregate kind %q", a.Kind)
	}
	if !ValidID(a.ID) {
		return fmt.Errorf("invalid %s id %q", a.Kind, a.ID)
	}
	return nil
}

// Envelope carries one event. ID, Type, Time, Source and Aggregate are set by
// whoever appends the event; Seq is the stream sequence, known only once the
// event has been read back from the log.
type Envelope struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Time      time.Time `json:"time"`
	Source    string    `json:"source"`
	Aggregate Aggregate `json:"aggregate"`
	// RequestedAt, when set, is when the caller sent the command that
	// caused the event (by the caller's clock); Time is when it was
	// recorded.
	RequestedAt *time.Time      `json:"requested_at,omitempty"`
	Payload     json.RawMessage `json:"payload"`

	// Seq is the stream sequence of the event; zero until it was appended.
	Seq uint64 `json:"-"`
	// Event is the decoded payload.
	Event Payload `json:"-"`
}

// New wraps a payload in an envelope. It fails only when the payload cannot
// be encoded or its type is not registered.
func New(id, source string, agg Aggregate, at time.Time, p Payload) (Envelope, error) {
	if reflect.ValueOf(p).Kind() != reflect.Pointer {
		return Envelope{}, fmt.Errorf("event payload %T must be a pointer", p)
	}
	name := p.EventType()
	if _, ok := registry[name]; !ok {
		return Envelope{}, fmt.Errorf("%w: %q", ErrUnknownType, name)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s payload: %w", name, err)
	}
	return Envelope{
		ID:        id,
		Type:      name,
		Time:      at.UTC(),
		Source:    source,
		Aggregate: agg,
		Payload:   raw,
		Event:     p,
	}, nil
}
