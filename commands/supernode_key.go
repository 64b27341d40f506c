package commands

import (
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/flmngr/flmngr/commands/fault"
)

// maxPublicKey bounds a SuperNode public key (P-521 is under 300 bytes).
const maxPublicKey = 1024

// SuperNodePublicKey checks that s is a SuperNode public key as Flower
// registers it: one line in the OpenSSH format, an ECDSA key on a NIST
// curve. It returns the key without its comment: nothing but the key is
// recorded.
func SuperNodePublicKey(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > maxPublicKey || strings.ContainsAny(s, "\r\n") {
		return "", fault.Invalid("public_key", "a SuperNode public key is one line of at most %d characters", maxPublicKey)
	}
	k, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil || len(rest) != 0 {
		return "", fault.Invalid("public_key", "not an OpenSSH public key")
	}
	switch k.Type() {
	case ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
	default:
		return "", fault.Invalid("public_key", "a SuperNode key must be ECDSA on a NIST curve (P-256, P-384 or P-521), not %s", k.Type())
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))), nil
}
