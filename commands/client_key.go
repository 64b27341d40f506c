package commands

import (
	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// IssueClientKey records the public NKey a client's agent connects with,
// replacing any earlier one. The client need not be registered yet: its
// agent registers it once it connects with the key.
type IssueClientKey struct {
	ClientID  string `json:"user_id"`
	PublicKey string `json:"public_key"`
	// Enrolment names the token a device enrolled with: such a key never
	// replaces one the client has (a token does not take over a client).
	Enrolment string `json:"enrolment,omitempty"`
}

// RevokeClientKey stops a client's key from connecting.
type RevokeClientKey struct {
	ClientID string `json:"user_id"`
	Reason   string `json:"reason,omitempty"`
}

func (c IssueClientKey) Aggregate() events.Aggregate  { return events.Client(c.ClientID) }
func (c RevokeClientKey) Aggregate() events.Aggregate { return events.Client(c.ClientID) }

func (c IssueClientKey) decide(s ClientState) ([]events.Payload, error) {
	if err := validateID("user_id", c.ClientID); err != nil {
		return nil, err
	}
	if !nkeys.IsValidPublicUserKey(c.PublicKey) {
		return nil, fault.Invalid("public_key", "public_key must be an NKey user public key (56 characters starting with U)")
	}
	if s.PublicKey == c.PublicKey {
		return nil, nil
	}
	if c.Enrolment != "" && s.PublicKey != "" {
		return nil, fault.Conflict("client %s already has a key: enrol under another id, or revoke its key first (flmngr client-credentials revoke %s)", c.ClientID, c.ClientID)
	}
	return []events.Payload{&events.ClientKeyIssued{PublicKey: c.PublicKey, Enrolment: c.Enrolment}}, nil
}

func (c RevokeClientKey) decide(s ClientState) ([]events.Payload, error) {
	if err := validateID("user_id", c.ClientID); err != nil {
		return nil, err
	}
	if len(c.Reason) > 256 {
		return nil, fault.Invalid("reason", "reason is longer than 256 bytes")
	}
	if s.PublicKey == "" {
		return nil, fault.NotFound("client %s has no key to revoke", c.ClientID)
	}
	return []events.Payload{&events.ClientKeyRevoked{PublicKey: s.PublicKey, Reason: c.Reason}}, nil
}
