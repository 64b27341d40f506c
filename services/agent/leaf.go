package agent

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/flmngr/flmngr/services/auth"
)

// LeafConfig configures the NATS leaf node an edge site may run inside
// its agent.
type LeafConfig struct {
	// Name names the leaf server.
	Name string
	// Remotes are the cloud's leaf node URLs (nats-leaf://host:7422, or
	// tls://… with a certificate).
	Remotes []string
	// Creds are the client's identity on the cloud's server.
	Creds auth.Creds
	// CAFile verifies the cloud's certificate ("" : the system's roots).
	CAFile string
	// ReconnectInterval is how often a lost link is tried again
	// (default 1s).
	ReconnectInterval time.Duration
	// StoreDir, when set, turns on the leaf server's own JetStream, with
	// its files there: the agent keeps the reports that wait for the
	// cloud in it (Config.Journal), on the site's disk. Its JetStream
	// domain is LeafDomain; the cloud's JetStream stays the cloud's.
	StoreDir string
	// Logger gets the leaf server's errors and warnings (a refused key,
	// say) and, at debug level, its notices.
	Logger *slog.Logger
}

// LeafDomain is the JetStream domain of an agent's leaf node.
const LeafDomain = "flmngr-leaf"

// natsLogger hands a NATS server's log to slog.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) Noticef(f string, a ...any) { n.l.Debug(fmt.Sprintf(f, a...)) }
func (n natsLogger) Warnf(f string, a ...any)   { n.l.Warn(fmt.Sprintf(f, a...)) }
func (n natsLogger) Fatalf(f string, a ...any)  { n.l.Error(fmt.Sprintf(f, a...)) }
func (n natsLogger) Errorf(f string, a ...any)  { n.l.Error(fmt.Sprintf(f, a...)) }
func (n natsLogger) Debugf(f string, a ...any)  { n.l.Debug(fmt.Sprintf(f, a...)) }
func (n natsLogger) Tracef(f string, a ...any)  { n.l.Debug(fmt.Sprintf(f, a...)) }

// StartLeaf starts an in-process NATS server that keeps a leaf node link
// to the cloud. The agent connects to it in-process, so its own
// connection never drops: when the site's link does, the leaf node
// reconnects by itself and what the agent could not report waits in its
// journaled outbox. Other programs of the site may share it.
func StartLeaf(cfg LeafConfig) (*server.Server, error) {
	if len(cfg.Remotes) == 0 || cfg.Creds.Key == nil {
		return nil, errors.New("leaf: the cloud's leaf node URL and the client's credentials are required")
	}
	// The leaf server answers the hub's nonce with the client's JWT and
	// signature.
	remote := &server.RemoteLeafOpts{SignatureCB: cfg.Creds.Sign}
	for _, raw := range cfg.Remotes {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("leaf: remote URL %q: want nats-leaf://host:port or tls://host:port", raw)
		}
		if u.Scheme == "tls" {
			remote.TLS = true
		}
		remote.URLs = append(remote.URLs, u)
	}
	if cfg.CAFile != "" || remote.TLS {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("leaf: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("leaf: no certificate in %s", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		remote.TLS, remote.TLSConfig, remote.TLSTimeout = true, tc, 5
	}
	interval := cfg.ReconnectInterval
	interval = cmp.Or(interval, time.Second)
	opts := &server.Options{
		ServerName: cfg.Name,
		DontListen: true,
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
		LeafNode:   server.LeafNodeOpts{Remotes: []*server.RemoteLeafOpts{remote}, ReconnectInterval: interval},
	}
	if cfg.StoreDir != "" {
		opts.JetStream, opts.StoreDir, opts.JetStreamDomain = true, cfg.StoreDir, LeafDomain
		opts.JetStreamMaxMemory, opts.JetStreamMaxStore = 8<<20, 1<<30
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("leaf: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLoggerV2(natsLogger{cfg.Logger.With("component", "leaf")}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("leaf: the local server did not start")
	}
	return ns, nil
}
