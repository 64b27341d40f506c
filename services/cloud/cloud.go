package cloud

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/projections/viewstore"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/files"
	"github.com/flmngr/flmngr/services/gateway"
	"github.com/flmngr/flmngr/services/logs"
	"github.com/flmngr/flmngr/services/matcher"
	"github.com/flmngr/flmngr/services/metrics"
	"github.com/flmngr/flmngr/services/presence"
	"github.com/flmngr/flmngr/services/storage"
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
	// LegacyOpen lists the networks from which the original system's
	// endpoints answer without the admin token (legacy mode: see
	// gateway.Config.LegacyOpen); CORSOrigins are the browser origins
	// allowed to read their replies.
	LegacyOpen  []netip.Prefix
	CORSOrigins []string
	// ClientRate and ClientBurst bound each client agent's requests
	// (default 50 a second, bursts of 500).
	ClientRate  float64
	ClientBurst int
	// Auth gives every connection an identity of its role (see package
	// auth): the trust material is kept in DataDir/identity, the
	// operators' credentials in DataDir/operator.creds, client keys are
	// issued as they are recorded in the log. An external deployment
	// must be configured with flmngr cluster-config's output.
	Auth bool
	// TLSCert and TLSKey make the embedded server speak TLS only.
	TLSCert, TLSKey string
	// LeafNodes is the address on which the embedded server accepts leaf
	// nodes of edge sites ("" : none); they authenticate as clients do.
	LeafNodes string
	// TLSCA verifies the certificate of an external NATS deployment.
	TLSCA string
	// MinFree is the data volume's free-space watermark: below it the
	// cloud refuses commands (reads go on), and does not start (0: none;
	// the CLI's default is DefaultMinFree).
	MinFree uint64
	Logger  *slog.Logger
}

// Validate reports whether the configuration is usable.
func (c Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("a data directory is required")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("TLS needs both a certificate and its key")
	}
	if c.NATSURL != "" && (c.TLSCert != "" || c.LeafNodes != "") {
		return errors.New("TLS and leaf nodes of an external NATS are its own configuration: pass --tls-ca to connect to it")
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("replicas must be between 1 and 5, got %d", c.Replicas)
	}
	return nil
}

// DefaultMinFree is the data volume's free-space watermark by default.
const DefaultMinFree = 256 << 20

// Cloud is a running cloud side. Open starts it; Close stops it.
type Cloud struct {
	cfg     Config
	ns      *server.Server
	lock    *dirLock
	nc      *nats.Conn // the services' connection (auth.RoleCloud)
	op      *nats.Conn // the operators' permissions, for in-process callers
	Log     *eventlog.Log
	Views   *viewstore.Store
	Cmds    *commands.Handler
	Files   *files.Store
	Logs    *logs.Publisher
	Metrics *metrics.Metrics
	// Storage watches the data volume's free space.
	Storage *storage.Guard
	// Trust is the deployment's trust material (nil without
	// authentication); Revoker keeps the servers' account current.
	Trust   *auth.Trust
	Revoker *auth.Revoker
	// OperatorCreds is the operators' credentials file;
	// OperatorCredsCreated is true when this start created it.
	OperatorCreds        string
	OperatorCredsCreated bool
	// AdminToken guards the gateway's mutating calls; TokenCreated is
	// true when this start created it (show it once).
	AdminToken   string
	TokenCreated bool
	gatewayURL   string
	gatewayLn    net.Listener
	leafURL      string
	cancel       context.CancelFunc
	stopAPI      func()
	wg           sync.WaitGroup
	errs         chan error

	mu    sync.Mutex
	conns []*nats.Conn
}

// Open starts the cloud side and returns once it serves requests. A
// failure is one line naming its cause, and leaves nothing running.
func Open(ctx context.Context, cfg Config) (*Cloud, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Name == "" {
		cfg.Name, _ = os.Hostname()
	}
	c := &Cloud{cfg: cfg, errs: make(chan error, 4)}
	if err := c.open(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cloud) open(ctx context.Context) (err error) {
	cfg := c.cfg
	if c.lock, err = lockDir(cfg.DataDir); err != nil {
		return err
	}
	c.Storage = storage.New(cfg.DataDir, cfg.MinFree, cfg.Logger.With("component", "storage"), nil)
	if free, err := storage.Free(cfg.DataDir); err != nil {
		return err
	} else if free < cfg.MinFree {
		return fmt.Errorf("data directory %s has %s free, below the %s the cloud needs to start (--min-free): free some space, or lower --min-free",
			cfg.DataDir, storage.Bytes(free), storage.Bytes(cfg.MinFree))
	}
	if cfg.Gateway != "" {
		// The HTTP address is taken first: a busy one stops the start
		// before anything runs.
		if c.gatewayLn, err = net.Listen("tcp", cfg.Gateway); err != nil {
			return fmt.Errorf("HTTP address %s: %w (choose one with --http or $FLMNGR_HTTP; \"\" turns it off)", cfg.Gateway, netCause(err))
		}
	}
	if cfg.Auth {
		if err := c.loadTrust(); err != nil {
			return err
		}
	}
	if cfg.NATSURL == "" {
		if err := c.startEmbedded(); err != nil {
			return err
		}
	}
	if err := c.setUp(ctx); err != nil {
		return err
	}
	if c.nc, err = c.dial(auth.RoleCloud, "cloud"); err != nil {
		return err
	}
	poisonLog := cfg.Logger.With("component", "log")
	onPoison := func(seq uint64, _ []byte, err error) {
		poisonLog.Warn("a message of the log is no readable event: skipped", "seq", seq, "err", err)
	}
	if err = c.untilJetStream(ctx, "attach to the event stream", func() (err error) {
		c.Log, err = eventlog.Attach(ctx, c.nc, eventlog.Config{Replicas: cfg.Replicas, OnPoison: onPoison})
		return err
	}); err != nil {
		return err
	}
	c.Views, err = viewstore.Open(viewsDir(cfg.DataDir), cfg.Logger.With("component", "views"))
	if err != nil {
		return fmt.Errorf("views in %s: %w", viewsDir(cfg.DataDir), err)
	}
	if c.Files, err = files.Attach(ctx, c.Log.JetStream()); err != nil {
		return err
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
	guard := c.Storage
	c.goRun("storage", func() error {
		// The metrics follow the guard's checks.
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			if _, err := guard.Check(); err == nil {
				c.Metrics.Disk(guard.FreeBytes(), guard.Low())
			}
			select {
			case <-runCtx.Done():
				return nil
			case <-t.C:
			}
		}
	})

	if c.Trust != nil {
		sys, err := c.Trust.NewSystemUser()
		if err != nil {
			return err
		}
		sysConn, err := c.connect(nats.Name("flmngr-system "+cfg.Name), sys.Option())
		if err != nil {
			return err
		}
		c.Revoker = auth.NewRevoker(c.Trust, sysConn, cfg.Logger.With("component", "auth"))
		c.goRun("revoker", func() error { return c.Revoker.Run(runCtx, c.Log) })
	}
	sup := supervisor.New(c.Log, c.Cmds, c.Files, supervisor.Config{
		Name: cfg.Name, WorkDir: filepath.Join(cfg.DataDir, "work"), Grace: cfg.Grace, Output: output,
		OnSpawn: c.Metrics.Spawned, OnExit: c.Metrics.Exited,
		Logger: cfg.Logger.With("component", "supervisor"),
	})
	c.goRun("supervisor", func() error { return sup.Run(runCtx) })
	m := matcher.New(c.Log, c.Cmds, matcher.Config{Logger: cfg.Logger.With("component", "matcher")})
	c.goRun("matcher", func() error { return m.Run(runCtx) })
	ingest := logs.NewIngest(c.nc, c.Logs, logs.IngestConfig{Allowed: c.clientMayLog, Logger: cfg.Logger.With("component", "logs")})
	c.goRun("logs", func() error { return ingest.Run(runCtx) })
	p := presence.New(c.nc, c.Cmds, c.Views, presence.Config{Timeout: cfg.HeartbeatTimeout, Logger: cfg.Logger.With("component", "presence")})
	c.goRun("presence", func() error { return p.Run(runCtx) })
	srv := api.NewServer(c.Cmds, c.Views, c.Log, api.Config{Version: cfg.Version, Files: c.Files, Decisions: m, Observe: c.Metrics.Command,
		Events: c.Log, Chunks: files.NewChunks(c.Files), ClientRate: cfg.ClientRate, ClientBurst: cfg.ClientBurst, OnLimited: c.Metrics.Limited, OnRefused: c.Metrics.Refused,
		Reader: c.Log, Logs: logs.NewReader(c.nc), Uploads: files.NewUploads(c.Log.JetStream(), c.Files), Admit: c.Storage.Admit,
		Disk:         func() (uint64, bool) { return c.Storage.FreeBytes(), c.Storage.Low() },
		KeysEnforced: c.keysEnforced, Issuer: c.issuer(), Enrol: c.enrolIssuer(), Logger: cfg.Logger.With("component", "api")})
	responder, err := c.dial(auth.RoleResponder, "responder")
	if err != nil {
		return err
	}
	if c.stopAPI, err = srv.Start(runCtx, responder); err != nil {
		return err
	}
	if c.op, err = c.dial(auth.RoleOperator, "operator"); err != nil {
		return err
	}
	if c.Trust != nil {
		if err := c.writeOperatorCreds(); err != nil {
			return err
		}
	}
	return c.startGateway(runCtx)
}

// setUp creates or updates the streams with a connection that may, and
// closes it: no other connection of the deployment administers streams.
func (c *Cloud) setUp(ctx context.Context) error {
	admin, err := c.dial(auth.RoleAdmin, "setup")
	if err != nil {
		return err
	}
	defer admin.Close()
	if err := checkServerVersion(admin); err != nil {
		return err
	}
	// A cluster that just started elects its JetStream leaders first:
	// the streams are made once it answers.
	var log *eventlog.Log
	err = c.untilJetStream(ctx, "create the event stream", func() (err error) {
		log, err = eventlog.Open(ctx, admin, eventlog.Config{Replicas: c.cfg.Replicas})
		return err
	})
	if err != nil {
		return err
	}
	if _, err := files.Open(ctx, log.JetStream(), c.cfg.Replicas, 0); err != nil {
		return err
	}
	// The bounded streams reserve their bytes: on a small embedded
	// volume, a quarter of its free space at most each.
	var uploadsMax, logsMax int64
	if free, err := storage.Free(c.cfg.DataDir); err == nil && c.ns != nil {
		quarter := int64(free / 4)
		uploadsMax, logsMax = min(files.UploadsMaxBytes, quarter), min(logs.MaxBytes, quarter)
	}
	if err := files.OpenUploads(ctx, log.JetStream(), c.cfg.Replicas, uploadsMax); err != nil {
		return err
	}
	return logs.Open(ctx, log.JetStream(), c.cfg.Replicas, logsMax)
}

// startupWait bounds how long the cloud waits for JetStream to answer
// when it starts.
const startupWait = time.Minute

// untilJetStream calls fn until it succeeds, for at most startupWait,
// while JetStream does not answer yet (a cluster electing its leaders).
func (c *Cloud) untilJetStream(ctx context.Context, what string, fn func() error) error {
	deadline := time.Now().Add(startupWait)
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := fn()
		if err == nil || time.Now().After(deadline) || !jetStreamStarting(err) {
			return err
		}
		c.cfg.Logger.Warn("JetStream does not answer yet; trying again", "step", what, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// jetStreamStarting reports whether an error is JetStream not answering
// yet rather than a refusal.
func jetStreamStarting(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == 10008 || apiErr.Code == 503 // cluster not available
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

// loadTrust reads the deployment's trust material; the embedded server
// makes it the first time, an external deployment must have it from
// flmngr cluster-config.
func (c *Cloud) loadTrust() error {
	path := auth.KeysFile(c.cfg.DataDir)
	if c.cfg.NATSURL != "" {
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no identity keys in %s: make them with flmngr cluster-config --data %s and configure the NATS servers with its output, or pass --auth=false for a NATS without authentication", path, c.cfg.DataDir)
		}
	}
	t, _, err := auth.LoadOrCreateTrust(path)
	if err != nil {
		return err
	}
	c.Trust = t
	return nil
}

// writeOperatorCreds (re)issues the operators' credentials in the data
// directory, keeping their key when the file is there.
func (c *Cloud) writeOperatorCreds() error {
	c.OperatorCreds = OperatorCredsFile(c.cfg.DataDir)
	var creds auth.Creds
	old, err := auth.ReadCreds(c.OperatorCreds)
	if err == nil {
		tok, err := c.Trust.IssueUser(auth.RoleOperator, "operator", old.PublicKey())
		if err != nil {
			return err
		}
		if tok == old.JWT {
			return nil
		}
		creds = auth.Creds{JWT: tok, Key: old.Key}
	} else {
		if _, serr := os.Stat(c.OperatorCreds); serr == nil {
			return fmt.Errorf("operator credentials: %w", err)
		}
		if creds, err = c.Trust.NewUser(auth.RoleOperator, "operator"); err != nil {
			return err
		}
		c.OperatorCredsCreated = true
	}
	if err := creds.Write(c.OperatorCreds, true); err != nil {
		return fmt.Errorf("operator credentials: %w", err)
	}
	return nil
}

// clientMayLog reports whether a client was offered a run of a task, or
// runs it: only then does the cloud keep what its process prints.
func (c *Cloud) clientMayLog(client, task, run string) bool {
	v, err := c.Views.Client(client)
	if err != nil || v == nil {
		return false
	}
	for _, o := range v.Offers {
		if o.TaskID == task && o.Run == run {
			return true
		}
	}
	for _, r := range v.Running {
		if r.TaskID == task && r.Run == run {
			return true
		}
	}
	return false
}

// issuer signs client JWTs (nil without authentication).
func (c *Cloud) issuer() api.ClientIssuer {
	if c.Trust == nil {
		return nil
	}
	return clientIssuer{c.Trust}
}

type clientIssuer struct{ t *auth.Trust }

// enrolIssuer makes the identities of enrolment tokens (nil without
// authentication).
func (c *Cloud) enrolIssuer() api.EnrolmentIssuer {
	if c.Trust == nil {
		return nil
	}
	return c.Trust
}

func (i clientIssuer) IssueClient(id, pub string) (string, error) {
	return i.t.IssueUser(auth.RoleClient, id, pub)
}

// startEmbedded starts the embedded server, with identities and TLS as
// configured.
func (c *Cloud) startEmbedded() error {
	cfg := c.cfg
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		var err error
		if tlsConfig, err = server.GenTLSConfig(&server.TLSConfigOpts{CertFile: cfg.TLSCert, KeyFile: cfg.TLSKey}); err != nil {
			return fmt.Errorf("TLS certificate %s or key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
		}
	}
	listen := cfg.Listen
	listen = cmp.Or(listen, "127.0.0.1:4222")
	if listen != "-" {
		if err := addressFree(listen); err != nil {
			return fmt.Errorf("NATS address %s: %w (another flmngr? choose one with --listen or $FLMNGR_LISTEN)", listen, err)
		}
	}
	var err error
	c.ns, err = eventlog.StartEmbedded(eventlog.EmbeddedConfig{Dir: cfg.DataDir, Listen: listen, ServerName: "flmngr-" + cfg.Name,
		Customize: func(o *server.Options) error {
			if tlsConfig != nil {
				o.TLS, o.TLSConfig, o.TLSTimeout = true, tlsConfig, 5
			}
			if cfg.LeafNodes != "" {
				if err := c.configureLeafNodes(o, tlsConfig); err != nil {
					return err
				}
			}
			if c.Trust != nil {
				return c.Trust.Configure(o, jwtDir(cfg.DataDir))
			}
			return nil
		}})
	return err
}

// configureLeafNodes makes the embedded server accept leaf nodes of edge
// sites on cfg.LeafNodes.
func (c *Cloud) configureLeafNodes(o *server.Options, tlsConfig *tls.Config) error {
	addr := c.cfg.LeafNodes
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("leaf node address %q: %w", addr, err)
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
	} else if err := addressFree(addr); err != nil {
		return fmt.Errorf("leaf node address %s: %w", addr, err)
	}
	// One server: leaf nodes reach it as they were told to (through a
	// proxy or NAT), not at the address it sees.
	o.LeafNode.Host, o.LeafNode.TLSConfig, o.LeafNode.NoAdvertise = host, tlsConfig, true
	c.leafURL = "nats-leaf://" + net.JoinHostPort(host, strconv.Itoa(o.LeafNode.Port))
	return nil
}

// addressFree reports whether a TCP address can be listened on now.
func addressFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return netCause(err)
	}
	return l.Close()
}

// netCause is the reason a listen failed, without the operation and
// address it repeats: "address already in use".
func netCause(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var sys *os.SyscallError
	if errors.As(err, &sys) && sys.Err != nil {
		err = sys.Err
	}
	return err
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
	nc, err := c.dial(auth.RoleGateway, "gateway")
	if err != nil {
		return err
	}
	var g *gateway.Gateway
	err = c.untilJetStream(ctx, "open the gateway", func() (err error) {
		g, err = gateway.New(ctx, nc, c.Files, c.Metrics, gateway.Config{Listen: addr, Token: c.AdminToken, OpenReads: c.cfg.OpenReads,
			LegacyOpen: c.cfg.LegacyOpen, CORSOrigins: c.cfg.CORSOrigins,
			Logger: c.cfg.Logger.With("component", "gateway")})
		return err
	})
	if err != nil {
		return err
	}
	ln := c.gatewayLn
	c.gatewayLn = nil
	c.gatewayURL = "http://" + ln.Addr().String()
	c.goRun("gateway", func() error { return g.Run(ctx, ln) })
	return nil
}

// IssueClientKey makes a key pair for client id, records its public
// key and returns the credentials, once the servers accept them (for
// agents run in this process).
func (c *Cloud) IssueClientKey(ctx context.Context, id string) (auth.Creds, error) {
	if c.Trust == nil {
		return auth.Creds{}, auth.ErrNoTrust
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return auth.Creds{}, err
	}
	res, err := c.Cmds.Execute(ctx, commands.IssueClientKey{ClientID: id, PublicKey: auth.PublicKey(kp)})
	if err != nil {
		return auth.Creds{}, err
	}
	if err := c.keysEnforced(ctx, res.Seq); err != nil {
		return auth.Creds{}, fmt.Errorf("key of client %s not enforced yet: %w", id, err)
	}
	tok, err := c.Trust.IssueUser(auth.RoleClient, id, auth.PublicKey(kp))
	if err != nil {
		return auth.Creds{}, err
	}
	return auth.Creds{JWT: tok, Key: kp}, nil
}

// ClientOptions are the connection options of an agent of client id run
// in this process: its name, its inbox prefix and, with authentication, a
// key issued for it.
func (c *Cloud) ClientOptions(ctx context.Context, id string) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name("flmngr-client " + id), nats.CustomInboxPrefix(auth.InboxPrefix(id)), nats.MaxReconnects(-1)}
	if c.Trust == nil {
		return opts, nil
	}
	creds, err := c.IssueClientKey(ctx, id)
	if err != nil {
		return nil, err
	}
	return append(opts, creds.Option()), nil
}

// ConnectClient connects an agent of client id run in this process.
func (c *Cloud) ConnectClient(ctx context.Context, id string) (*nats.Conn, error) {
	opts, err := c.ClientOptions(ctx, id)
	if err != nil {
		return nil, err
	}
	return c.connect(opts...)
}

// keysEnforced waits, at most 30 s, until the servers enforce the key
// events up to seq.
func (c *Cloud) keysEnforced(ctx context.Context, seq uint64) error {
	if c.Revoker == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return c.Revoker.WaitFor(ctx, seq)
}

// LeafURL is where leaf nodes connect ("" : nowhere).
func (c *Cloud) LeafURL() string {
	return c.leafURL
}

// GatewayURL is where the HTTP gateway listens ("" when it is off).
func (c *Cloud) GatewayURL() string { return c.gatewayURL }

// LegacyOpen is the networks the original's endpoints are open to
// without the admin token (none: legacy mode is off).
func (c *Cloud) LegacyOpen() []netip.Prefix { return c.cfg.LegacyOpen }

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

// Conn is a connection with the operators' permissions (commands and
// queries), for callers in this process such as the demo.
func (c *Cloud) Conn() *nats.Conn { return c.op }

// ClientURL is where other processes connect ("" when the server is
// external or listens in-process only).
func (c *Cloud) ClientURL() string {
	if c.ns == nil || c.cfg.Listen == "-" {
		return ""
	}
	return c.ns.ClientURL()
}

// Close stops the services, the projection runner and the embedded server,
// in that order; it may be called on a cloud that failed to open.
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
	c.mu.Lock()
	conns := c.conns
	c.conns = nil
	c.mu.Unlock()
	for _, nc := range conns {
		nc.Close()
	}
	if c.ns != nil {
		c.ns.Shutdown()
		c.ns.WaitForShutdown()
	}
	if c.gatewayLn != nil {
		c.gatewayLn.Close()
	}
	c.lock.release()
}
