package events

import "time"

// KindEnrolment is the aggregate kind of enrolment tokens: one aggregate
// per token, named by the token's id.
const KindEnrolment = "enrolment"

// Enrolment returns the aggregate of enrolment token id.
func Enrolment(id string) Aggregate { return Aggregate{Kind: KindEnrolment, ID: id} }

// Wire names of the enrolment aggregate's events.
const (
	EnrolmentCreatedV1 = "enrolment.created.v1"
	EnrolmentUsedV1    = "enrolment.used.v1"
)

func init() {
	register(
		func() Payload { return &EnrolmentCreated{} },
		func() Payload { return &EnrolmentUsed{} },
	)
}

// EnrolmentCreated records a token a device may enrol with, by its
// SHA-256 (the token itself is shown once, to the operator who made it,
// and stored nowhere), with the public key of the NATS identity it
// carries, when it expires, how many devices may use it and the
// attributes an enrolled client is given.
type EnrolmentCreated struct {
	EnrolmentTerms
}

// EnrolmentTerms are a token's terms: its SHA-256 in hex, the public key
// of the NATS identity it carries, when it expires, how many devices may
// use it and the attributes an enrolled client is given. The command that
// creates a token states them and its event records them.
type EnrolmentTerms struct {
	TokenHash  string            `json:"token_hash"`
	TokenKey   string            `json:"token_key"`
	ExpiresAt  time.Time         `json:"expires_at"`
	Uses       int               `json:"uses"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// EnrolmentUsed records that a device enrolled with the token as client
// ClientID, registering the public key it made (its seed stays on the
// device) and given the token's attributes; Remaining is how many more
// devices may use the token.
type EnrolmentUsed struct {
	ClientID   string            `json:"user_id"`
	PublicKey  string            `json:"public_key"`
	TokenKey   string            `json:"token_key"`
	Remaining  int               `json:"remaining"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

func (*EnrolmentCreated) EventType() string { return EnrolmentCreatedV1 }
func (*EnrolmentUsed) EventType() string    { return EnrolmentUsedV1 }
