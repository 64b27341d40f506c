package commands

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"maps"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// Bounds of an enrolment token.
const (
	MaxEnrolmentUses  = 10_000
	MaxEnrolmentTTL   = 30 * 24 * time.Hour
	maxEnrolmentAttrs = 32
)

// EnrolmentState is what the enrolment commands decide on.
type EnrolmentState struct {
	Exists bool
	events.EnrolmentTerms
	Used int
}

// Apply folds one event of the token into the state.
func (s *EnrolmentState) Apply(e events.Envelope) {
	switch p := e.Event.(type) {
	case *events.EnrolmentCreated:
		*s = EnrolmentState{Exists: true, EnrolmentTerms: p.EnrolmentTerms}
	case *events.EnrolmentUsed:
		s.Used++
	}
}

// TokenHash is how a token is stored: its SHA-256, in hex.
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// CreateEnrolment records a token devices may enrol with. The token is
// made (and shown) by whoever runs the command; only its hash and the
// public key of the NATS identity it carries are recorded.
type CreateEnrolment struct {
	ID string `json:"id"`
	events.EnrolmentTerms
}

// UseEnrolment spends one use of a token: a device enrols as ClientID
// with the public key it made. At is when the token was presented.
type UseEnrolment struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	ClientID  string    `json:"user_id"`
	PublicKey string    `json:"public_key"`
	At        time.Time `json:"-"`
}

func (c CreateEnrolment) Aggregate() events.Aggregate { return events.Enrolment(c.ID) }
func (c UseEnrolment) Aggregate() events.Aggregate    { return events.Enrolment(c.ID) }

func (c CreateEnrolment) decide(s EnrolmentState) ([]events.Payload, error) {
	if s.Exists {
		return nil, fault.Conflict("enrolment token %s exists", c.ID)
	}
	if len(c.TokenHash) != 64 {
		return nil, fault.Invalid("token_hash", "token_hash must be a SHA-256 in hex")
	}
	if !nkeys.IsValidPublicUserKey(c.TokenKey) {
		return nil, fault.Invalid("token_key", "token_key must be an NKey user public key")
	}
	if c.Uses < 1 || c.Uses > MaxEnrolmentUses {
		return nil, fault.Invalid("uses", "uses must be 1-%d", MaxEnrolmentUses)
	}
	if c.ExpiresAt.IsZero() {
		return nil, fault.Invalid("expires_at", "expires_at is required")
	}
	if err := ValidateEnrolmentAttributes(c.Attributes); err != nil {
		return nil, err
	}
	terms := c.EnrolmentTerms
	terms.ExpiresAt, terms.Attributes = terms.ExpiresAt.UTC(), maps.Clone(terms.Attributes)
	return []events.Payload{&events.EnrolmentCreated{EnrolmentTerms: terms}}, nil
}

// ValidateEnrolmentAttributes checks the attributes a token gives the
// clients that enrol with it.
func ValidateEnrolmentAttributes(attrs map[string]string) error {
	if len(attrs) > maxEnrolmentAttrs {
		return fault.Invalid("attributes", "at most %d attributes", maxEnrolmentAttrs)
	}
	for k, v := range attrs {
		if !events.ValidID(k) || len(v) > 256 {
			return fault.Invalid("attributes", "attribute %q: names are 1-64 letters, digits, '_' or '-', values at most 256 bytes", k)
		}
	}
	return nil
}

// tokenRefused is every refusal of a token: unauthorized.
func tokenRefused(format string, args ...any) error {
	return &fault.Error{Kind: fault.KindUnauthorized, Message: fmt.Sprintf(format, args...)}
}

func (c UseEnrolment) decide(s EnrolmentState) ([]events.Payload, error) {
	if err := validateID("user_id", c.ClientID); err != nil {
		return nil, err
	}
	if !nkeys.IsValidPublicUserKey(c.PublicKey) {
		return nil, fault.Invalid("public_key", "public_key must be an NKey user public key (56 characters starting with U)")
	}
	if !s.Exists || subtle.ConstantTimeCompare([]byte(TokenHash(c.Token)), []byte(s.TokenHash)) != 1 {
		return nil, tokenRefused("enrolment token %s is not valid", c.ID)
	}
	if !c.At.Before(s.ExpiresAt) {
		return nil, tokenRefused("enrolment token %s expired at %s: ask the operator for a new one (flmngr enrol create)", c.ID, s.ExpiresAt.Format(time.RFC3339))
	}
	if s.Used >= s.Uses {
		return nil, tokenRefused("enrolment token %s is used up (%d of %d uses): ask the operator for a new one (flmngr enrol create)", c.ID, s.Used, s.Uses)
	}
	return []events.Payload{&events.EnrolmentUsed{ClientID: c.ClientID, PublicKey: c.PublicKey, TokenKey: s.TokenKey, Remaining: s.Uses - s.Used - 1,
		Attributes: maps.Clone(s.Attributes)}}, nil
}
