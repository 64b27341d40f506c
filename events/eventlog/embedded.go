package eventlog

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedConfig configures an in-process nats-server with JetStream.
type EmbeddedConfig struct {
	// Dir holds JetStream's file storage.
	Dir string
	// Listen is host:port for client connections. Port 0 picks a free port;
	// "-" disables the listener (in-process connections only).
	Listen string
	// ServerName names the server (defaults to "flmngr").
	ServerName string
	// Logger, when set, receives the server's notices and errors.
	Logger server.Logger
	// ReadyTimeout bounds start-up (defaults to 10s).
	ReadyTimeout time.Duration
	// Customize, when set, may adjust the options before the server starts
	// (clustering, accounts, TLS).
	Customize func(*server.Options) error
}

// Validate reports whether the configuration can be used.
func (c EmbeddedConfig) Validate() error {
	if c.Dir == "" {
		return errors.New("embedded nats: a storage directory is required")
	}
	if c.Listen != "-" && c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return fmt.Errorf("embedded nats: listen address %q: %w", c.Listen, err)
		}
	}
	return nil
}

// StartEmbedded starts a nats-server with JetStream and file storage under
// cfg.Dir and waits until it accepts connections. Shut it down with
// Shutdown followed by WaitForShutdown.
func StartEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.Dir, "jetstream"),
		NoSigs:     true,
		NoLog:      cfg.Logger == nil,
		MaxPayload: 8 << 20,
	}
	opts.ServerName = cmp.Or(opts.ServerName, "flmngr")
	switch cfg.Listen {
	case "-":
		opts.DontListen = true
	case "":
		opts.Host, opts.Port = "127.0.0.1", 4222
	default:
		host, port, _ := net.SplitHostPort(cfg.Listen)
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: listen port %q: %w", port, err)
		}
		p = cmp.Or(p, server.RANDOM_PORT)
		opts.Host, opts.Port = host, p
	}
	if cfg.Customize != nil {
		if err := cfg.Customize(opts); err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	if cfg.Logger != nil {
		ns.SetLoggerV2(cfg.Logger, false, false, false)
	}
	ns.Start()
	timeout := cfg.ReadyTimeout
	timeout = cmp.Or(timeout, 10*time.Second)
	if !ns.ReadyForConnections(timeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, fmt.Errorf("embedded nats: not ready after %s (is %s in use?)", timeout, cfg.Listen)
	}
	return ns, nil
}
