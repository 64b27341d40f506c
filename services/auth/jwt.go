package auth

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// AccountName names the flmngr account in its JWT.
const AccountName = "flmngr"

// OperatorJWT is the NATS operator's JWT: what servers trust.
func (t *Trust) OperatorJWT() (string, error) {
	oc := jwt.NewOperatorClaims(mustPublic(t.Root))
	oc.Name = "flmngr"
	oc.SystemAccount = t.SystemKey()
	return oc.Encode(t.Root)
}

// SystemAccountJWT is the system account's JWT.
func (t *Trust) SystemAccountJWT() (string, error) {
	ac := jwt.NewAccountClaims(t.SystemKey())
	ac.Name = "SYS"
	return ac.Encode(t.Root)
}

// AccountJWT is the flmngr account's JWT: JetStream on, one scoped
// signing key per role with that role's permissions, and the revoked user
// keys with the time they were revoked (a JWT issued to such a key before
// that time no longer connects).
func (t *Trust) AccountJWT(revoked map[string]time.Time) (string, error) {
	ac := jwt.NewAccountClaims(t.AccountKey())
	ac.Name = AccountName
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: jwt.NoLimit, DiskStorage: jwt.NoLimit, Streams: jwt.NoLimit, Consumer: jwt.NoLimit,
		MaxAckPending: jwt.NoLimit, MemoryMaxStreamBytes: jwt.NoLimit, DiskMaxStreamBytes: jwt.NoLimit}
	for _, r := range Roles {
		scope := jwt.NewUserScope()
		scope.Key, scope.Role, scope.Description = mustPublic(t.Roles[r]), string(r), "flmngr "+string(r)
		scope.Template.Permissions = Permissions(r)
		// An enrolment token is the whole identity: the device has no
		// key yet, and the token expires.
		scope.Template.BearerToken = r == RoleEnrol
		ac.SigningKeys.AddScopedSigner(scope)
	}
	for _, pub := range slices.Sorted(maps.Keys(revoked)) {
		ac.RevokeAt(pub, revoked[pub])
	}
	return ac.Encode(t.Root)
}

// IssueUser signs a JWT for the user key pub in role r, named name (a
// client's id: its permissions are about that name).
func (t *Trust) IssueUser(r Role, name, pub string) (string, error) {
	kp, ok := t.Roles[r]
	if !ok {
		return "", fmt.Errorf("auth: no role %q", r)
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("auth: %q is not a user public key", pub)
	}
	return jwt.IssueUserJWT(kp, t.AccountKey(), pub, name, 0)
}

// IssueEnrolment makes the NATS identity an enrolment token carries: a
// bearer JWT in the enrol role named id that expires at expires. The
// token is the JWT; its key pair is thrown away, and pub is its public
// half.
func (t *Trust) IssueEnrolment(id string, expires time.Time) (token, pub string, err error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", "", err
	}
	pub = mustPublic(kp)
	token, err = jwt.IssueUserJWT(t.Roles[RoleEnrol], t.AccountKey(), pub, id, time.Until(expires))
	return token, pub, err
}

// NewUser makes a key pair in role r named name and returns its
// credentials.
func (t *Trust) NewUser(r Role, name string) (Creds, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return Creds{}, err
	}
	tok, err := t.IssueUser(r, name, mustPublic(kp))
	if err != nil {
		return Creds{}, err
	}
	return Creds{JWT: tok, Key: kp}, nil
}

// NewSystemUser makes a user of the system account that may push account
// JWTs to the servers and nothing else.
func (t *Trust) NewSystemUser() (Creds, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return Creds{}, err
	}
	uc := jwt.NewUserClaims(mustPublic(kp))
	uc.Name = "flmngr-cloud"
	uc.Pub.Allow.Add("$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE", "$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP", "$SYS.REQ.SERVER.PING.VARZ")
	uc.Sub.Allow.Add("_INBOX.>")
	tok, err := uc.Encode(t.System)
	if err != nil {
		return Creds{}, err
	}
	return Creds{JWT: tok, Key: kp}, nil
}
