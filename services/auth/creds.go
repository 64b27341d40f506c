package auth

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Creds are a user's credentials: its JWT and its key pair.
type Creds struct {
	JWT string
	Key nkeys.KeyPair
}

// Option authenticates a connection with the credentials.
func (c Creds) Option() nats.Option {
	return nats.UserJWT(func() (string, error) { return c.JWT, nil }, c.Key.Sign)
}

// Sign answers a server's nonce as a leaf node remote does.
func (c Creds) Sign(nonce []byte) (string, []byte, error) {
	sig, err := c.Key.Sign(nonce)
	return c.JWT, sig, err
}

// PublicKey is the user's public key.
func (c Creds) PublicKey() string { return mustPublic(c.Key) }

// Name is the name in the user's JWT (a client's id).
func (c Creds) Name() string {
	uc, err := jwt.DecodeUserClaims(c.JWT)
	if err != nil {
		return ""
	}
	return uc.Name
}

// Write saves the credentials as a NATS .creds file readable by its
// owner only; it never replaces a file unless force is set.
func (c Creds) Write(path string, force bool) error {
	seed, err := c.Key.Seed()
	if err != nil {
		return err
	}
	b, err := jwt.FormatUserConfig(c.JWT, seed)
	if err != nil {
		return err
	}
	defer clear(b)
	if !force {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s exists; pass --force to replace it", path)
		}
	}
	return writeFile0600(path, b)
}

// ReadCreds reads a NATS .creds file.
func ReadCreds(path string) (Creds, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Creds{}, fmt.Errorf("credentials: %w", err)
	}
	defer clear(b)
	if !bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
		if bytes.Contains(b, []byte("\nSU")) || bytes.HasPrefix(bytes.TrimSpace(b), []byte("SU")) {
			return Creds{}, fmt.Errorf("credentials %s hold a bare NKey seed: flmngr identities are NATS credentials (a JWT and its seed); make new ones with flmngr client-credentials create", path)
		}
		return Creds{}, fmt.Errorf("credentials %s: not a NATS .creds file (no user JWT)", path)
	}
	tok, err := jwt.ParseDecoratedJWT(b)
	if err != nil {
		return Creds{}, fmt.Errorf("credentials %s: %w", path, err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(b)
	if err != nil {
		return Creds{}, fmt.Errorf("credentials %s: %w", path, err)
	}
	uc, err := jwt.DecodeUserClaims(tok)
	if err != nil {
		return Creds{}, fmt.Errorf("credentials %s: %w", path, err)
	}
	if uc.Subject != mustPublic(kp) {
		return Creds{}, fmt.Errorf("credentials %s: the JWT is not the seed's", path)
	}
	return Creds{JWT: tok, Key: kp}, nil
}

// CredsOption authenticates with a .creds file.
func CredsOption(path string) (nats.Option, error) {
	c, err := ReadCreds(path)
	if err != nil {
		return nil, err
	}
	return c.Option(), nil
}

// ErrNoTrust is returned where identities are needed and the deployment
// has none (it runs without authentication).
var ErrNoTrust = errors.New("this deployment runs without authentication: it issues no identities")

// OperatorOptions are the connection options of an operator with the
// credentials in path: the identity and the operators' inbox prefix.
func OperatorOptions(path string) ([]nats.Option, error) {
	c, err := ReadCreds(path)
	if err != nil {
		return nil, err
	}
	return []nats.Option{c.Option(), nats.CustomInboxPrefix(RoleInboxPrefix(RoleOperator))}, nil
}
