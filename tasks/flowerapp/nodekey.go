package flowerapp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// PrepareNode readies a client's state directory for a SuperNode of one
// run: it writes the SuperLink's CA certificate (from the offer) and a
// fresh SuperNode key pair, the private key in the OpenSSH format Flower
// reads (ECDSA P-384, mode 0600). It returns the public key, one line in
// the OpenSSH format `flwr supernode register` reads: the only part of
// the key that leaves the client. A fresh pair each time: Flower never
// registers a public key twice.
func PrepareNode(state string, ca []byte) (string, error) {
	if err := ValidCA(ca); err != nil {
		return "", err
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return "", fmt.Errorf("supernode key: %w", err)
	}
	if err := writeFile(filepath.Join(state, CAFile), ca, 0o644); err != nil {
		return "", fmt.Errorf("supernode CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return "", fmt.Errorf("supernode key: %w", err)
	}
	blk, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		return "", fmt.Errorf("supernode key: %w", err)
	}
	if err := writeFile(filepath.Join(state, NodeKeyFile), pem.EncodeToMemory(blk), 0o600); err != nil {
		return "", fmt.Errorf("supernode key: %w", err)
	}
	pub, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		return "", fmt.Errorf("supernode key: %w", err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), nil
}

// nodeFiles are the paths of a client's CA certificate and SuperNode
// key, which must exist.
func nodeFiles(state string) (ca, key string, err error) {
	ca, key = filepath.Join(state, CAFile), filepath.Join(state, NodeKeyFile)
	for _, f := range []string{ca, key} {
		if _, err := os.Stat(f); err != nil {
			return "", "", fmt.Errorf("no SuperNode key or SuperLink CA certificate (%s): the agent writes them when the task is offered", f)
		}
	}
	return ca, key, nil
}
