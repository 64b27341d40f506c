package cloud

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	fjs "github.com/flmngr/flmngr/events/jetstream"
	pbadger "github.com/flmngr/flmngr/projections/badger"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/files"
	"github.com/flmngr/flmngr/services/gateway"
	"github.com/flmngr/flmngr/services/logs"
	"github.com/flmngr/flmngr/services/matcher"
	"github.com/flmngr/flmngr/services/metrics"
	"github.com/flmngr/flmngr/services/presence"
	"github.com/flmngr/flmngr/services/supervisor"
	"github.com/flmngr/flmngr/taskd"
)

// Config configures the cloud side.
type Config struct {
	// DataDir holds the embedded JetStream store and the views.
	DataDir string
	// NATSURL, when set, connects to an external NATS deployment instead
	// of embedding a server (comma-separated URLs of a cluster).
	NATSURL string
	// Listen is the embedded server's client address (default
	// 127.0.0.1:4222; port 0 picks a free one; "-" accepts in-process
	// connections only).
	Listen string
	// Replicas of the event stream (default 1).
	Replicas int
	// Name names this cloud instance in events and connections (default
	// the host name).
	Name string
	// Version is reported by the services.
	Version string
	// HashPassword overrides the password hash (tests use a fast one).
	HashPassword func(string) (string, error)
	// Grace is how long a stopped server may take before SIGKILL
	// (default 5s).
	Grace time.Duration
	// HeartbeatTimeout is the silence after which a client is offline
	// (default 15s).
	HeartbeatTimeout time.Duration
	// Output, when set, gets every line the servers print.
	Output func(task, run string, m taskd.Message)
	// OnAppend, when set, is told about every batch of events this cloud
	// appended, once the log acknowledged them.
	OnAppend func([]events.Envelope)
	// Gateway is the HTTP address of the API, the original's endpoints and
	// the console ("" turns it off; port 0 picks a free one).
	Gateway string
	// OpenReads serves reads without the admin token.
	OpenReads bool
	// ClientRate and ClientBurst bound each client agent's requests
	// (default 50 a second, bursts of 500).
	ClientRate  float64
	ClientBurst int
	// Auth makes the embedded server require an identity of every
	// connection (see package auth): the operators' key is kept in
	// DataDir/operator.nk, client keys come from the event log.
	Auth bool
	// TLSCert and TLSKey make the embedded server speak TLS only.
	TLSCert, TLSKey string
	// LeafNodes is the address on which the embedded server accepts leaf
	// nodes of edge sites ("" : none); they authenticate as clients do.
	LeafNodes string
	// Creds authenticates the connection to an external NATS: an NKey
	// seed file or a NATS .creds file (JWT). TLSCA verifies its
	// certificate.
	Creds, TLSCA string
	Logger       *slog.Logger
}

// Validate reports whether the configuration is usable.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("a data directory is required")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("TLS needs both a certificate and its key")
	}
	if c.NATSURL != "" && (c.Auth || c.TLSCert != "") {
		return errors.New("authentication and TLS of an external NATS are its own configuration: pass --creds and --tls-ca to connect to it")
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("replicas must be between 1 and 5, got %d", c.Replicas)
	}
	return nil
}

// Cloud is a running cloud side. Open starts it; Close stops it.
type Cloud struct {
	cfg     Config
	ns      *server.Server
	nc      *nats.Conn
	Log     *fjs.Log
	Views   *pbadger.Store
	Cmds    *commands.Handler
	Files   *files.Store
	Logs    *logs.Publisher
	Metrics *metrics.Metrics
	// Auth keeps the embedded server's identities (nil without Auth).
	Auth *auth.Registry
	// OperatorKey is the operators' key file; OperatorKeyCreated is true
	// when this start created it.
	OperatorKey        string
	OperatorKeyCreated bool
	// AdminToken guards the gateway's mutating calls; TokenCreated is
	// true when this start created it (show it once).
	AdminToken   string
	TokenCreated bool
	gatewayURL   string
	leafURL      string
	cancel       context.CancelFunc
	stopAPI      func()
	wg           sync.WaitGroup
	errs         chan error
}

// Open starts the cloud side and returns once it serves requests.
func Open(ctx context.Context, cfg Config) (c *Cloud, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	c = &Cloud{cfg: cfg, errs: make(chan error, 4)}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if cfg.NATSURL == "" {
		var connOpts []nats.Option
		if connOpts, err = c.startEmbedded(); err != nil {
			return nil, err
		}
		c.nc, err = nats.Connect("", append(connOpts, nats.InProcessServer(c.ns), nats.Name("flmngr-cloud "+cfg.Name))...)
	} else {
		opts := []nats.Option{nats.Name("flmngr-cloud " + cfg.Name), nats.MaxReconnects(-1), nats.ReconnectWait(500 * time.Millisecond)}
		if cfg.Creds != "" {
			o, err := auth.CredsOption(cfg.Creds)
			if err != nil {
				return nil, err
			}
			opts = append(opts, o)
		}
		if cfg.TLSCA != "" {
			opts = append(opts, nats.RootCAs(cfg.TLSCA))
		}
		c.nc, err = nats.Connect(cfg.NATSURL, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	c.Log, err = fjs.Open(ctx, c.nc, fjs.Config{Replicas: cfg.Replicas})
	if err != nil {
		return nil, err
	}
	c.Views, err = pbadger.Open(filepath.Join(cfg.DataDir, "views"), cfg.Logger.With("component", "views"))
	if err != nil {
		return nil, err
	}
	c.Files, err = files.Open(ctx, c.Log.JetStream(), cfg.Replicas, 0)
	if err != nil {
		return nil, err
	}
	if err := logs.Open(ctx, c.Log.JetStream(), cfg.Replicas); err != nil {
		return nil, err
	}
	c.Logs = logs.NewPublisher(c.Log.JetStream())
	output := c.Logs.Sink("server")
	if cfg.Output != nil {
		pub := output
		output = func(task, run string, m taskd.Message) { pub(task, run, m); cfg.Output(task, run, m) }
	}
	c.Metrics = metrics.New(c.Views)
	onAppend := c.Metrics.Appended
	if cfg.OnAppend != nil {
		onAppend = func(envs []events.Envelope) { c.Metrics.Appended(envs); cfg.OnAppend(envs) }
	}
	c.Cmds = commands.NewHandler(c.Log, commands.Config{Source: "cloud/" + cfg.Name, HashPassword: cfg.HashPassword, OnAppend: onAppend})
	runCtx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.goRun("views", func() error { return c.Views.Run(runCtx, c.Log) })
	if c.Auth != nil {
		c.goRun("auth", func() error { return c.Auth.Run(runCtx, c.Log) })
	}
	sup := supervisor.New(c.Log, c.Cmds, c.Files, supervisor.Config{
		Name: cfg.Name, WorkDir: filepath.Join(cfg.DataDir, "work"), Grace: cfg.Grace, Output: output,
		OnSpawn: c.Metrics.Spawned, OnExit: c.Metrics.Exited,
		Logger: cfg.Logger.With("component", "supervisor"),
	})
	c.goRun("supervisor", func() error { return sup.Run(runCtx) })
	m := matcher.New(c.Log, c.Cmds, matcher.Config{Logger: cfg.Logger.With("component", "matcher")})
	c.goRun("matcher", func() error { return m.Run(runCtx) })
	p := presence.New(c.nc, c.Cmds, c.Views, presence.Config{Timeout: cfg.HeartbeatTimeout, Logger: cfg.Logger.With("component", "presence")})
	c.goRun("presence", func() error { return p.Run(runCtx) })
	srv := api.NewServer(c.Cmds, c.Views, c.Log, api.Config{Version: cfg.Version, Files: c.Files, Observe: c.Metrics.Command,
		Events: c.Log, Chunks: files.NewChunks(c.Files), ClientRate: cfg.ClientRate, ClientBurst: cfg.ClientBurst, OnLimited: c.Metrics.Limited,
		KeysEnforced: c.keysEnforced, Logger: cfg.Logger.With("component", "api")})
	c.stopAPI, err = srv.Start(runCtx, c.nc)
	if err != nil {
		return nil, err
	}
	if err := c.startGateway(runCtx); err != nil {
		return nil, err
	}
	return c, nil
}

// startEmbedded starts the embedded server, with identities and TLS as
// configured, and returns the options of the cloud's own connection.
func (c *Cloud) startEmbedded() ([]nats.Option, error) {
	cfg := c.cfg
	var conn []nats.Option
	if cfg.Auth {
		cloudKey, err := auth.NewKey()
		if err != nil {
			return nil, err
		}
		c.OperatorKey = filepath.Join(cfg.DataDir, "operator.nk")
		opKey, created, err := auth.LoadOrCreateKey(c.OperatorKey, "flmngr operator key: the CLI connects with it (--creds, $FLMNGR_CREDS).")
		if err != nil {
			return nil, fmt.Errorf("operator key: %w", err)
		}
		c.OperatorKeyCreated = created
		c.Auth = auth.NewRegistry(cfg.Logger.With("component", "auth"), auth.Cloud(auth.PublicKey(cloudKey)), auth.Operator(auth.PublicKey(opKey)))
		conn = append(conn, auth.KeyOption(cloudKey))
	}
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		var err error
		if tlsConfig, err = server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey}); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	}
	var err error
	c.ns, err = fjs.StartEmbedded(fjs.EmbeddedConfig{Dir: cfg.DataDir, Listen: cfg.Listen, ServerName: "flmngr-" + cfg.Name,
		Customize: func(o *server.Options) error {
			if tlsConfig != nil {
				o.TLS, o.TLSConfig, o.TLSTimeout = true, tlsConfig, 5
			}
			if cfg.LeafNodes != "" {
				host, port, err := net.SplitHostPort(cfg.LeafNodes)
				if err != nil {
					return fmt.Errorf("leaf node address %q: %w", cfg.LeafNodes, err)
				}
				if o.LeafNode.Port, err = strconv.Atoi(port); err != nil {
					return fmt.Errorf("leaf node port %q: %w", port, err)
				}
				if o.LeafNode.Port == 0 {
					// The server tells no one the port it picks: pick it here.
					l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
					if err != nil {
						return err
					}
					o.LeafNode.Port = l.Addr().(*net.TCPAddr).Port
					l.Close()
				}
				// One server: leaf nodes reach it as they were told to
				// (through a proxy or NAT), not at the address it sees.
				o.LeafNode.Host, o.LeafNode.TLSConfig, o.LeafNode.NoAdvertise = host, tlsConfig, true
				c.leafURL = "nats-leaf://" + net.JoinHostPort(host, strconv.Itoa(o.LeafNode.Port))
			}
			if c.Auth != nil {
				return c.Auth.Configure(o)
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	if c.Auth != nil {
		c.Auth.Attach(c.ns)
	}
	return conn, nil
}

// startGateway serves the HTTP gateway unless it is turned off.
func (c *Cloud) startGateway(ctx context.Context) error {
	if c.cfg.Gateway == "" {
		return nil
	}
	var err error
	c.AdminToken, c.TokenCreated, err = gateway.LoadToken(filepath.Join(c.cfg.DataDir, "admin-token"))
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	addr := c.cfg.Gateway
	g, err := gateway.New(ctx, c.nc, c.Metrics, gateway.Config{Listen: addr, Token: c.AdminToken, OpenReads: c.cfg.OpenReads,
		Logger: c.cfg.Logger.With("component", "gateway")})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	c.gatewayURL = "http://" + ln.Addr().String()
	c.goRun("gateway", func() error { return g.Run(ctx, ln) })
	return nil
}

// IssueClientKey makes a key for client id, records it, and returns it
// once the embedded server accepts it (for agents run in this process).
func (c *Cloud) IssueClientKey(ctx context.Context, id string) (nkeys.KeyPair, error) {
	kp, err := auth.NewKey()
	if err != nil {
		return nil, err
	}
	res, err := c.Cmds.Execute(ctx, commands.IssueClientKey{ClientID: id, PublicKey: auth.PublicKey(kp)})
	if err != nil {
		return nil, err
	}
	if c.Auth != nil {
		if err := c.Auth.WaitFor(ctx, res.Seq); err != nil {
			return nil, fmt.Errorf("key of client %s not enforced yet: %w", id, err)
		}
	}
	return kp, nil
}

func (c *Cloud) keysEnforced(ctx context.Context, seq uint64) error {
	if c.Auth == nil {
		return nil
	}
	return c.Auth.WaitFor(ctx, seq)
}

// LeafURL is where leaf nodes connect ("" : nowhere).
func (c *Cloud) LeafURL() string {
	return c.leafURL
}

// GatewayURL is where the HTTP gateway listens ("" when it is off).
func (c *Cloud) GatewayURL() string { return c.gatewayURL }

func (c *Cloud) goRun(name string, fn func() error) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := fn(); err != nil {
			c.cfg.Logger.Error("component stopped", "component", name, "err", err)
			select {
			case c.errs <- fmt.Errorf("%s: %w", name, err):
			default:
			}
		}
	}()
}

// StopServices stops answering on the NATS endpoints while everything
// else goes on: what an operator sees when the services are down.
func (c *Cloud) StopServices() {
	if c.stopAPI != nil {
		c.stopAPI()
	}
}

// Errors reports components that stopped on their own.
func (c *Cloud) Errors() <-chan error { return c.errs }

// DataDir is where the cloud keeps its data.
func (c *Cloud) DataDir() string { return c.cfg.DataDir }

// Conn is the cloud's own NATS connection.
func (c *Cloud) Conn() *nats.Conn { return c.nc }

// ClientURL is where other processes connect ("" when the server is
// external or listens in-process only).
func (c *Cloud) ClientURL() string {
	if c.ns == nil || c.cfg.Listen == "-" {
		return ""
	}
	return c.ns.ClientURL()
}

// Close stops the services, the projection runner and the embedded server,
// in that order.
func (c *Cloud) Close() {
	if c.stopAPI != nil {
		c.stopAPI()
	}
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	if c.Views != nil {
		if err := c.Views.Close(); err != nil {
			c.cfg.Logger.Warn("close views", "err", err)
		}
	}
	if c.nc != nil {
		c.nc.Close()
	}
	if c.ns != nil {
		c.ns.Shutdown()
		c.ns.WaitForShutdown()
	}
}
