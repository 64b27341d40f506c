package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/nats-io/nkeys"
)

// Trust is a deployment's trust material: the NATS operator that signs
// the accounts, the system account, the flmngr account, and one scoped
// signing key per role. Whoever holds it can issue any identity: it stays
// in the cloud's data directory, readable by its owner only.
type Trust struct {
	Root    nkeys.KeyPair
	System  nkeys.KeyPair
	Account nkeys.KeyPair
	Roles   map[Role]nkeys.KeyPair
}

// KeysFile is where a data directory keeps the trust material.
func KeysFile(dataDir string) string { return filepath.Join(dataDir, "identity", "keys.json") }

// keysFile is the file's form: seeds.
type keysFile struct {
	About   string            `json:"about"`
	Root    string            `json:"operator"`
	System  string            `json:"system_account"`
	Account string            `json:"account"`
	Roles   map[string]string `json:"roles"`
}

// LoadOrCreateTrust reads the trust material in path, making what is
// missing (all of it the first time, a key for a role added since) and
// saving it with mode 0600; created tells whether the file is new.
func LoadOrCreateTrust(path string) (t *Trust, created bool, err error) {
	var f keysFile
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		created = true
	case err != nil:
		return nil, false, fmt.Errorf("identity keys: %w", err)
	default:
		defer clear(b)
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, false, fmt.Errorf("identity keys %s: %w", path, err)
		}
	}
	t = &Trust{Roles: map[Role]nkeys.KeyPair{}}
	changed := created
	key := func(seed *string, make func() (nkeys.KeyPair, error), want nkeys.PrefixByte) (nkeys.KeyPair, error) {
		if *seed == "" {
			kp, err := make()
			if err != nil {
				return nil, err
			}
			s, _ := kp.Seed()
			*seed, changed = string(s), true
			return kp, nil
		}
		kp, err := nkeys.FromSeed([]byte(*seed))
		if err != nil {
			return nil, fmt.Errorf("identity keys %s: %w", path, err)
		}
		if nkeys.Prefix(mustPublic(kp)) != want {
			return nil, fmt.Errorf("identity keys %s: a key has the wrong kind", path)
		}
		return kp, nil
	}
	if t.Root, err = key(&f.Root, nkeys.CreateOperator, nkeys.PrefixByteOperator); err != nil {
		return nil, false, err
	}
	if t.System, err = key(&f.System, nkeys.CreateAccount, nkeys.PrefixByteAccount); err != nil {
		return nil, false, err
	}
	if t.Account, err = key(&f.Account, nkeys.CreateAccount, nkeys.PrefixByteAccount); err != nil {
		return nil, false, err
	}
	if f.Roles == nil {
		f.Roles = map[string]string{}
	}
	for _, r := range Roles {
		seed := f.Roles[string(r)]
		kp, err := key(&seed, nkeys.CreateAccount, nkeys.PrefixByteAccount)
		if err != nil {
			return nil, false, err
		}
		f.Roles[string(r)], t.Roles[r] = seed, kp
	}
	if changed {
		f.About = "flmngr trust material: whoever holds this file can issue any identity of this deployment. Keep it secret (mode 0600)."
		if err := writeSecret(path, &f); err != nil {
			return nil, false, fmt.Errorf("identity keys: %w", err)
		}
	}
	return t, created, nil
}

// writeSecret writes v as JSON to path, readable by its owner only,
// replacing the file atomically.
func writeSecret(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	defer clear(b)
	return writeFile0600(path, append(b, '\n'))
}

func writeFile0600(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func mustPublic(kp nkeys.KeyPair) string {
	pub, _ := kp.PublicKey()
	return pub
}

// PublicKey returns kp's public key.
func PublicKey(kp nkeys.KeyPair) string { return mustPublic(kp) }

// AccountKey is the public key of the flmngr account.
func (t *Trust) AccountKey() string { return mustPublic(t.Account) }

// SystemKey is the public key of the system account.
func (t *Trust) SystemKey() string { return mustPublic(t.System) }
