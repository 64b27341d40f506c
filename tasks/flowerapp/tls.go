package flowerapp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// StateDir is where a Flower App task keeps its Flower state under a
// work directory, on the cloud (the SuperLink's database, TLS files, the
// SuperNode keys the cloud admits) and on a client (the SuperNode's key
// and the SuperLink's CA certificate). The default commands of a
// flower-app task pass it as --state.
func StateDir(workDir, task string) string {
	return filepath.Join(workDir, "flower", "task_"+task)
}

// Files under a state directory.
const (
	// TLSDir holds the SuperLink's CA certificate (ca.pem), its
	// certificate (server.pem) and key (server.key).
	TLSDir = "tls"
	// CAFile is the SuperLink's CA certificate on a client.
	CAFile = "ca.pem"
	// NodeKeyFile is a client's SuperNode private key (OpenSSH format).
	NodeKeyFile = "supernode.key"
)

// tlsValidity is how long a run's certificates are valid.
const tlsValidity = 366 * 24 * time.Hour

// IssueTLS makes a fresh CA and a server certificate signed by it for the
// SuperLink of one run, valid for hosts (the addresses clients dial) and
// the loopback addresses (the Control API). It writes state/tls/ca.pem,
// server.pem and server.key (0600) and returns the CA certificate (PEM),
// which the clients get with their offer. The CA's private key is
// dropped once the server certificate is signed: nothing else can be
// signed with it.
func IssueTLS(state string, hosts []string) ([]byte, error) {
	dir := filepath.Join(state, TLSDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{Organization: []string{"flmngr"}, CommonName: "flmngr Flower App SuperLink CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(tlsValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("tls: CA certificate: %w", err)
	}
	ca, _ = x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	srv := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{Organization: []string{"flmngr"}, CommonName: "flmngr Flower App SuperLink"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(tlsValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			srv.IPAddresses = append(srv.IPAddresses, ip)
		} else if h != "" && h != "localhost" {
			srv.DNSNames = append(srv.DNSNames, h)
		}
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("tls: server certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	for name, b := range map[string][]byte{
		"ca.pem":     caPEM,
		"server.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := writeFile(filepath.Join(dir, name), b, 0o600); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	return caPEM, nil
}

// tlsFiles are the paths of the SuperLink's TLS files, which must exist.
func tlsFiles(state string) (ca, cert, key string, err error) {
	dir := filepath.Join(state, TLSDir)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	for _, f := range []string{ca, cert, key} {
		if _, err := os.Stat(f); err != nil {
			return "", "", "", fmt.Errorf("no TLS certificate for the SuperLink (%s): the cloud issues it when it starts the task", f)
		}
	}
	return ca, cert, key, nil
}

// ValidCA checks that b is one PEM CA certificate.
func ValidCA(b []byte) error {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" || len(bytesTrim(rest)) != 0 {
		return errors.New("the SuperLink's CA is not one PEM certificate")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("the SuperLink's CA: %w", err)
	}
	if !c.IsCA {
		return errors.New("the SuperLink's CA certificate is not a CA's")
	}
	return nil
}

func bytesTrim(b []byte) []byte {
	for len(b) > 0 && (b[0] == '\n' || b[0] == '\r' || b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// writeFile writes b to path with perm, replacing it at once.
func writeFile(path string, b []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, perm); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
