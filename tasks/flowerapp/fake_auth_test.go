package flowerapp_test

// The fake Flower's TLS and SuperNode authentication (see
// fake_flower_test.go for what it follows).

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// fakeNode is a registered SuperNode.
type fakeNode struct {
	ID        string `json:"id"`
	Key       string `json:"key"`
	Status    string `json:"status"` // registered, online, offline, unregistered
	CreatedAt string `json:"created_at"`
	OnlineAt  string `json:"online_at"`
	DeletedAt string `json:"deleted_at"`
	// OnlineUntil: a node whose SuperNode went away without a word
	// stays online until its heartbeats time out.
	OnlineUntil time.Time `json:"online_until"`
}

// registry is a SuperLink's registered SuperNodes, kept next to its
// database so that they survive its restarts.
type registry struct {
	mu    sync.Mutex
	path  string // "": in memory
	nodes []*fakeNode
	conns map[string]net.Conn // node id → its connected SuperNode
}

func openRegistry(db string) *registry {
	r := &registry{conns: map[string]net.Conn{}}
	if db != ":flwr-in-memory-state:" && db != "" {
		r.path = db + ".nodes.json"
		_ = json.Unmarshal([]byte(readText(r.path)), &r.nodes)
	}
	return r
}

func (r *registry) save() {
	if r.path != "" {
		b, _ := json.Marshal(r.nodes)
		writeAtomic(r.path, string(b))
	}
}

func nodeID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return new(big.Int).SetUint64(binary.BigEndian.Uint64(b[:]) | 1<<63).String()
}

// control answers one Control API request (a line) with a JSON line.
func (r *registry) control(line string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	fail := func(msg string) string {
		b, _ := json.Marshal(map[string]any{"success": false, "error-message": "Loading project configuration... \nSuccess\n " + msg + "\n\n"})
		return string(b)
	}
	switch verb {
	case "ping":
		return "pong"
	case "register":
		for _, n := range r.nodes {
			if n.Key == arg {
				return fail("The provided public key is already in use by another SuperNode.")
			}
		}
		n := &fakeNode{ID: nodeID(), Key: arg, Status: "registered", CreatedAt: now(), OnlineAt: "N/A", DeletedAt: "N/A"}
		r.nodes = append(r.nodes, n)
		r.save()
		fmt.Println("INFO :      [Control.RegisterNode] Registered node", n.ID)
		return `{"success": true, "node-id": ` + n.ID + `}`
	case "unregister":
		for _, n := range r.nodes {
			if n.ID == arg && n.Status != "unregistered" {
				n.Status, n.DeletedAt = "unregistered", now()
				r.save()
				if c := r.conns[n.ID]; c != nil {
					c.Close() // its next call: Node ID not found
				}
				fmt.Println("INFO :      [Control.UnregisterNode] Unregistered node", n.ID)
				return `{"success": true, "node-id": ` + n.ID + `}`
			}
		}
		return fail("Node ID not found for this account.")
	case "ls":
		var rows []string
		for _, n := range r.nodes {
			rows = append(rows, fmt.Sprintf(`{"node-id": %s, "owner-aid": "<none>", "status": %q, "created-at": %q, "online-at": %q, "online-elapsed": "00:00:01", "offline-at": "N/A", "deleted-at": %q}`,
				n.ID, n.Status, n.CreatedAt, n.OnlineAt, n.DeletedAt))
		}
		return `{"success": true, "nodes": [` + strings.Join(rows, ", ") + `]}`
	}
	return fail("unknown request " + verb)
}

// activate admits a SuperNode with key (auth on) and returns its node
// id, or why it is refused.
func (r *registry) activate(key string, auth bool, c net.Conn) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !auth {
		return nodeID(), nil
	}
	if key == "" {
		return "", errors.New("SuperNode authentication is enabled. All SuperNodes must be registered via the CLI.")
	}
	for _, n := range r.nodes {
		if n.Key == key && n.Status == "online" && (r.conns[n.ID] != nil || time.Now().Before(n.OnlineUntil)) {
			return "", fmt.Errorf("SuperNode with node ID %s could not be activated.", n.ID)
		}
		if n.Key == key && n.Status != "unregistered" {
			n.Status, n.OnlineAt = "online", now()
			r.conns[n.ID] = c
			r.save()
			return n.ID, nil
		}
	}
	return "", errors.New("No SuperNode found with the given public key.")
}

// deactivate records that a node's SuperNode went away: offline at once
// if it said goodbye, else once its heartbeats time out
// ($FAKE_FLOWER_PATIENCE_MS later).
func (r *registry) deactivate(id string, c net.Conn, goodbye bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conns[id] != c {
		return
	}
	delete(r.conns, id)
	for _, n := range r.nodes {
		if n.ID == id && n.Status == "online" {
			if patience := envInt("FAKE_FLOWER_PATIENCE_MS", 0); !goodbye && patience > 0 {
				n.OnlineUntil = time.Now().Add(time.Duration(patience) * time.Millisecond)
			} else {
				n.Status = "offline"
			}
			r.save()
		}
	}
}

// serverTLS is the SuperLink's TLS configuration, nil without the flags.
func serverTLS(ca, cert, key string) (*tls.Config, error) {
	if cert == "" && key == "" && ca == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// clientTLS trusts the CA certificate in file ca, for a connection to
// addr.
func clientTLS(ca, addr string) (*tls.Config, error) {
	pool := x509.NewCertPool()
	b, err := os.ReadFile(ca)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no certificate in %s", ca)
	}
	host, _, _ := net.SplitHostPort(addr)
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}, nil
}

// dial connects to addr, over TLS when cfg is set; the handshake is done
// at once so that a wrong mode fails here.
func dial(addr string, cfg *tls.Config) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil || cfg == nil {
		return c, err
	}
	tc := tls.Client(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}

// request sends one line and reads one line back.
func request(c net.Conn, line string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	_ = c.SetDeadline(time.Time{})
	return strings.TrimSpace(reply), err
}

// nodePublicKey reads an OpenSSH private key file as Flower does (an EC
// key) and returns its public key as one line.
func nodePublicKey(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	k, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		return "", err
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return "", errors.New("not an EC key")
	}
	pub, err := ssh.NewPublicKey(&ec.PublicKey)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))), nil
}

// federation reads a federation's address and root-certificates in the
// app's pyproject.toml, as flwr does.
func federation(app, fed string) (addr, ca string, ok bool) {
	text := readText(app + "/pyproject.toml")
	_, after, found := strings.Cut(text, "[tool.flwr.federations."+fed+"]")
	if !found {
		return "", "", false
	}
	if i := strings.Index(after, "\n["); i >= 0 {
		after = after[:i]
	}
	m := regexp.MustCompile(`address = "([^"]+)"`).FindStringSubmatch(after)
	if m == nil {
		return "", "", false
	}
	if c := regexp.MustCompile(`root-certificates = "([^"]+)"`).FindStringSubmatch(after); c != nil {
		ca = c[1]
	}
	return m[1], ca, true
}

// controlRequest sends one request to the federation's Control API, in
// the federation's TLS mode; false when the SuperLink cannot be reached
// that way.
func controlRequest(app, fed, line string) (string, bool) {
	addr, ca, ok := federation(app, fed)
	if !ok {
		return "", false
	}
	var cfg *tls.Config
	if ca != "" {
		var err error
		if cfg, err = clientTLS(ca, addr); err != nil {
			return "", false
		}
	}
	c, err := dial(addr, cfg)
	if err != nil {
		return "", false
	}
	defer c.Close()
	reply, err := request(c, line)
	if err != nil || reply == "" {
		return "", false
	}
	return reply, true
}
