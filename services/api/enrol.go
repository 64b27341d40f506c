package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/auth"
)

// SubjectCreateEnrolment is where operators make enrolment tokens; a
// device enrols on auth.EnrolPrefix.<token id>.
const SubjectCreateEnrolment = "flmngr.cmd.enrol.create"

// EnrolmentIssuer makes the NATS identity an enrolment token carries.
type EnrolmentIssuer interface {
	IssueEnrolment(id string, expires time.Time) (token, pub string, err error)
}

// CreateEnrolmentRequest asks for an enrolment token.
type CreateEnrolmentRequest struct {
	// TTL is how long the token may be used (default 1h).
	TTL time.Duration `json:"ttl_ns,omitempty"`
	// Uses is how many devices may enrol with it (default 1).
	Uses       int               `json:"uses,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// CreateEnrolmentReply carries the token, shown this once: only its hash
// is recorded.
type CreateEnrolmentReply struct {
	CommandReply
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	Uses      int       `json:"uses"`
}

// EnrolRequest is what a device sends to enrol: the token, the client id
// it enrols as and the public half of the key pair it made.
type EnrolRequest struct {
	Token     string `json:"token"`
	ClientID  string `json:"user_id"`
	PublicKey string `json:"public_key"`
}

// EnrolReply gives an enrolled device the JWT of its key and the
// attributes the token gives it.
type EnrolReply struct {
	CommandReply
	JWT        string            `json:"jwt"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// enrolTokenOf returns the token id of an enrolment subject.
func enrolTokenOf(subject string) string {
	id, _ := strings.CutPrefix(subject, auth.EnrolPrefix+".")
	if id == subject || strings.Contains(id, ".") {
		return ""
	}
	return id
}

// newEnrolmentID makes a token id: 16 lower-case letters and digits.
func newEnrolmentID() string {
	const alphabet = "abcdefghijkmnpqrstuvwxyz23456789"
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// createEnrolment makes a token: a bearer NATS identity in the enrol role
// that expires with it, recorded by its hash.
func (s *Server) createEnrolment(ctx context.Context, data []byte) (any, error) {
	var r CreateEnrolmentRequest
	if err := decode(data, &r); err != nil {
		return nil, err
	}
	if s.cfg.Enrol == nil {
		return nil, fault.Invalid("", "%v", auth.ErrNoTrust)
	}
	r.TTL = cmp.Or(r.TTL, time.Hour)
	r.Uses = cmp.Or(r.Uses, 1)
	if r.TTL < time.Second || r.TTL > commands.MaxEnrolmentTTL {
		return nil, fault.Invalid("ttl", "ttl must be from 1s to %s", commands.MaxEnrolmentTTL)
	}
	if err := commands.ValidateEnrolmentAttributes(r.Attributes); err != nil {
		return nil, err
	}
	id := newEnrolmentID()
	// NATS JWTs expire on whole seconds.
	expires := s.now().Add(r.TTL).Truncate(time.Second)
	token, pub, err := s.cfg.Enrol.IssueEnrolment(id, expires)
	if err != nil {
		return nil, fault.Internal(err, "make the token's identity")
	}
	res, err := s.exec.Execute(ctx, commands.CreateEnrolment{ID: id, EnrolmentTerms: events.EnrolmentTerms{
		TokenHash: commands.TokenHash(token), TokenKey: pub, ExpiresAt: expires, Uses: r.Uses, Attributes: r.Attributes}})
	if err != nil {
		return nil, err
	}
	return CreateEnrolmentReply{CommandReply: commandReply(res), ID: id, Token: token, ExpiresAt: expires, Uses: r.Uses}, nil
}

// enrol spends one use of the token the request came with and registers
// the device's public key as its client's; the device's seed never
// leaves it. It answers once the servers admit the new key.
func (s *Server) enrol(ctx context.Context, data []byte) (any, error) {
	subject, _ := ctx.Value(subjectKey{}).(string)
	id := enrolTokenOf(subject)
	if ok, retry := s.limiter.Allow("enrol/" + id); !ok {
		return nil, fault.RateLimited(retry, "too many enrolments with token %s", id)
	}
	var r EnrolRequest
	if err := decode(data, &r); err != nil {
		return nil, err
	}
	if s.cfg.Issuer == nil {
		return nil, fault.Invalid("", "%v", auth.ErrNoTrust)
	}
	// A client that has a key is not taken over with a token: said
	// before the token's use is spent (the key command checks it again).
	if events.ValidID(r.ClientID) {
		if v, err := s.views.Client(r.ClientID); err == nil && v != nil && v.PublicKey != "" {
			return nil, fault.Conflict("client %s already has a key: enrol under another id, or have the operator revoke its key first", r.ClientID)
		}
	}
	used, err := s.exec.Execute(ctx, commands.UseEnrolment{ID: id, Token: r.Token, ClientID: r.ClientID, PublicKey: r.PublicKey, At: s.now()})
	if err != nil {
		return nil, err
	}
	var attrs map[string]string
	if len(used.Events) > 0 {
		if p, ok := used.Events[0].Event.(*events.EnrolmentUsed); ok {
			attrs = p.Attributes
		}
	}
	v, err := s.keyEnforced(func(ctx context.Context, _ []byte) (any, error) {
		res, err := s.exec.Execute(ctx, commands.IssueClientKey{ClientID: r.ClientID, PublicKey: r.PublicKey, Enrolment: id})
		if err != nil {
			return nil, err
		}
		return commandReply(res), nil
	})(ctx, nil)
	if err != nil {
		return nil, err
	}
	tok, err := s.cfg.Issuer.IssueClient(r.ClientID, r.PublicKey)
	if err != nil {
		return nil, fault.Internal(err, "sign the client's JWT")
	}
	return EnrolReply{CommandReply: v.(CommandReply), JWT: tok, Attributes: attrs}, nil
}

func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

func commandReply(res commands.Result) CommandReply {
	reply := CommandReply{Seq: res.Seq, Events: make([]EventRef, len(res.Events)), Replayed: res.Replayed}
	for i, e := range res.Events {
		reply.Events[i] = EventRef{ID: e.ID, Type: e.Type, Seq: e.Seq}
	}
	return reply
}

// CreateEnrolment makes an enrolment token.
func (c *Client) CreateEnrolment(ctx context.Context, r CreateEnrolmentRequest) (CreateEnrolmentReply, error) {
	var reply CreateEnrolmentReply
	err := c.call(ctx, SubjectCreateEnrolment, r, &reply)
	return reply, err
}

// Enrol asks the cloud, over nc (connected with the token, its inbox
// prefix auth.EnrolInboxPrefix(tokenID)), to register a device's key.
func Enrol(ctx context.Context, nc *nats.Conn, tokenID string, r EnrolRequest) (EnrolReply, error) {
	var reply EnrolReply
	err := NewClient(nc, 0).call(ctx, auth.EnrolPrefix+"."+tokenID, r, &reply)
	return reply, err
}
