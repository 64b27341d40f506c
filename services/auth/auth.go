// Package auth gives every party of a deployment its own NATS identity
// and only the permissions its part needs.
//
// Identities are NKeys: a party holds a secret seed and the server knows
// only its public key, so nothing on the cloud side can leak a client's
// secret. There are three kinds:
//
//   - the cloud services: a key made at each start, held in memory; they
//     may do anything;
//   - operators (the CLI, scripts): one key whose seed lives in the data
//     directory (operator.nk, mode 0600); they may do anything but write
//     the event log directly, pose as a client, or fake republished
//     events;
//   - each client agent: a key made by `flmngr client-credentials create
//     ID` on the operator's machine, whose public half is recorded in the
//     event log (client.key_issued.v1). A client may publish only on its
//     own subjects (flmngr.client.<id>.>, its heartbeat, its task
//     processes' log lines) and receive only its own republished events
//     and replies to its own inbox (_INBOX_<id>.>).
//
// The embedded server learns client keys from the event log: Registry
// follows the key events and reloads the server's authorization when one
// is issued or revoked.
package auth

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// ClientPermissions are what client id may do: nothing but its own part.
func ClientPermissions(id string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"flmngr.client." + id + ".>",
			"flmngr.hb." + id,
			"flmngr.logs.*.*.client-" + id,
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			InboxPrefix(id) + ".>",
			"flmngr.live.client." + id + ".>",
		}},
	}
}

// OperatorPermissions are what operators may do: everything but write
// the log, pose as a client or fake live events. The cloud's command
// endpoints are their way to change anything.
func OperatorPermissions() *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Deny: []string{
			"flmngr.ev.>",
			"flmngr.live.>",
			"flmngr.client.>",
			"flmngr.hb.>",
		}},
	}
}

// InboxPrefix is the inbox prefix of client id's connections: replies to
// its requests come there, and nobody else's do.
func InboxPrefix(id string) string { return "_INBOX_" + id }

// ClientOptions are the connection options of client id's agent with the
// seed in keyFile.
func ClientOptions(id, keyFile string) ([]nats.Option, error) {
	kp, err := ReadKey(keyFile)
	if err != nil {
		return nil, err
	}
	return []nats.Option{KeyOption(kp), nats.CustomInboxPrefix(InboxPrefix(id))}, nil
}

// KeyOption authenticates a connection with kp.
func KeyOption(kp nkeys.KeyPair) nats.Option {
	pub, _ := kp.PublicKey()
	return nats.Nkey(pub, kp.Sign)
}

// NewKey makes a user key pair.
func NewKey() (nkeys.KeyPair, error) { return nkeys.CreateUser() }

// PublicKey returns kp's public key.
func PublicKey(kp nkeys.KeyPair) string {
	pub, _ := kp.PublicKey()
	return pub
}

// ReadKey reads a key file: a user seed, alone on a line, possibly among
// comments (the files WriteKey writes, and plain `nk` seeds).
func ReadKey(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer clear(b)
	for line := range bytes.Lines(b) {
		line = bytes.TrimSpace(line)
		if bytes.HasPrefix(line, []byte("SU")) {
			kp, err := nkeys.FromSeed(line)
			if err != nil {
				return nil, fmt.Errorf("key file %s: %w", path, err)
			}
			return kp, nil
		}
	}
	return nil, fmt.Errorf("key file %s holds no NKey user seed (a line starting with SU)", path)
}

// WriteKey writes kp's seed to path, readable by its owner only; it never
// overwrites a file unless force is set.
func WriteKey(path string, kp nkeys.KeyPair, about string, force bool) error {
	seed, err := kp.Seed() // the key pair's own bytes: not to be wiped here
	if err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; pass --force to replace it", path)
	}
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, line := range strings.Split(about, "\n") {
		buf.WriteString("# " + line + "\n")
	}
	buf.WriteString("# Public key: " + PublicKey(kp) + "\n# Keep this file secret: whoever holds it connects as its owner.\n")
	buf.Write(seed)
	buf.WriteString("\n")
	_, err = f.Write(buf.Bytes())
	clear(buf.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && force {
		err = os.Chmod(path, 0o600)
	}
	return err
}

// LoadOrCreateKey reads the key at path, creating it (mode 0600) when it
// does not exist; created tells which.
func LoadOrCreateKey(path, about string) (kp nkeys.KeyPair, created bool, err error) {
	kp, err = ReadKey(path)
	if err == nil {
		return kp, false, nil
	}
	if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
		return nil, false, err
	}
	if kp, err = NewKey(); err != nil {
		return nil, false, err
	}
	if err := WriteKey(path, kp, about, false); err != nil {
		return nil, false, err
	}
	return kp, true, nil
}

// ServerBlock is the authorization entry of client id for an external
// NATS server's configuration file.
func ServerBlock(id, publicKey string) string {
	p := ClientPermissions(id)
	q := func(s []string) string { return `["` + strings.Join(s, `", "`) + `"]` }
	return fmt.Sprintf("{ nkey: %s, permissions: { publish: { allow: %s }, subscribe: { allow: %s } } }",
		publicKey, q(p.Publish.Allow), q(p.Subscribe.Allow))
}

// CredsOption authenticates with a credentials file: a NATS .creds file
// (a user JWT and its seed, for deployments run with JWT accounts) or a
// file holding an NKey user seed.
func CredsOption(path string) (nats.Option, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer clear(b)
	if bytes.Contains(b, []byte("BEGIN NATS USER JWT")) {
		return nats.UserCredentials(path), nil
	}
	kp, err := ReadKey(path)
	if err != nil {
		return nil, err
	}
	return KeyOption(kp), nil
}
