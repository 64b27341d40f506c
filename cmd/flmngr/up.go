package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/gateway"
	"github.com/flmngr/flmngr/taskd"
)

type serveFlags struct {
	leafnodes string
	auth      bool
	tlsCert   string
	tlsKey    string
	data      string
	replicas  int
	name      string
	logLevel  string
	http      string
	openReads bool
	minFree   string
	// legacyOpen and corsOrigins are the original's tools' access.
	legacyOpen  string
	corsOrigins string
}

func (s *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.http, "http", envOr("FLMNGR_HTTP", "127.0.0.1:9001"), "address of the HTTP API, the original's endpoints and the web console (\"\" turns it off; 0.0.0.0:9001 exposes it) ($FLMNGR_HTTP)")
	fs.BoolVar(&s.openReads, "open-reads", false, "serve HTTP reads without the admin token")
	fs.StringVar(&s.legacyOpen, "legacy-open", os.Getenv("FLMNGR_LEGACY_OPEN"), "legacy mode: networks (CIDR or address, comma-separated) from which the original system's endpoints (POST /rpc_exec_*, /upload_files) answer WITHOUT the admin token, for its unchanged web pages and edge agents; the REST API and the console still need it (off by default) ($FLMNGR_LEGACY_OPEN)")
	fs.StringVar(&s.corsOrigins, "cors-origins", os.Getenv("FLMNGR_CORS_ORIGINS"), "browser origins (scheme://host:port, comma-separated, or *) whose pages may read the original's endpoints' replies (default * with --legacy-open, none without) ($FLMNGR_CORS_ORIGINS)")
	fs.StringVar(&s.data, "data", defaultDataDir(), "data directory: JetStream store and views ($FLMNGR_DATA)")
	fs.IntVar(&s.replicas, "replicas", 1, "replicas of the event stream (3 on a NATS cluster)")
	fs.StringVar(&s.name, "name", "", "name of this cloud instance in events (default: host name)")
	fs.StringVar(&s.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&s.minFree, "min-free", taskd.FormatBytes(cloud.DefaultMinFree), "free space the data volume must keep: below it commands are refused (HTTP 507) and the cloud does not start")
}

// registerAuth adds the flag that turns identities off.
func (s *serveFlags) registerAuth(fs *flag.FlagSet) {
	fs.BoolVar(&s.auth, "auth", true, "give every NATS connection an identity with its role's permissions: operators use operator.creds in --data, clients the credentials of flmngr client-credentials create (--auth=false: anyone who reaches NATS may do anything)")
}

// registerEmbedded adds the flags of the embedded NATS server.
func (s *serveFlags) registerEmbedded(fs *flag.FlagSet) {
	s.registerAuth(fs)
	fs.StringVar(&s.tlsCert, "tls-cert", "", "certificate (PEM) of the embedded NATS server: with --tls-key, it speaks TLS only")
	fs.StringVar(&s.tlsKey, "tls-key", "", "private key (PEM) of --tls-cert")
	fs.StringVar(&s.leafnodes, "leafnodes", "", "address on which to accept NATS leaf nodes of edge sites (flmngr client --leaf), e.g. 0.0.0.0:7422; they authenticate with their client keys")
}

func (s *serveFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.logLevel)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: want debug, info, warn or error", errUsage, s.logLevel)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}

func runUp(args []string, out io.Writer) error {
	fs := newFlags("up", "up [flags]", "Runs the embedded deployment: a NATS server with JetStream storing under\n--data, the event log, the views and every cloud service. Stop it with\nCtrl-C (SIGINT) or SIGTERM; start it again and everything is as it was.")
	var sf serveFlags
	sf.register(fs)
	sf.registerEmbedded(fs)
	listen := registerListen(fs)
	if err := parseNone(fs, args); err != nil {
		return err
	}
	return serve(out, sf, cloud.Config{Listen: *listen})
}

func runCloud(args []string, out io.Writer) error {
	fs := newFlags("cloud", "cloud --nats URL[,URL...] [flags]", "Runs the cloud services against an external NATS deployment with JetStream\n(a cluster: pass every URL and --replicas 3). Views are kept under --data.")
	var sf serveFlags
	sf.register(fs)
	sf.registerAuth(fs)
	url := fs.String("nats", os.Getenv("FLMNGR_NATS"), "NATS URL(s), comma-separated ($FLMNGR_NATS)")
	tlsCA := fs.String("tls-ca", os.Getenv("FLMNGR_TLS_CA"), "CA certificate (PEM) to verify the NATS servers with ($FLMNGR_TLS_CA)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return fmt.Errorf("%w: --nats is required (or use 'flmngr up' for the embedded server)", errUsage)
	}
	return serve(out, sf, cloud.Config{NATSURL: *url, TLSCA: *tlsCA})
}

// openCloud opens the cloud side with the serve flags.
func openCloud(ctx context.Context, sf serveFlags, cfg cloud.Config) (*cloud.Cloud, *slog.Logger, error) {
	logger, err := sf.logger()
	if err != nil {
		return nil, nil, err
	}
	data, err := filepath.Abs(sf.data)
	if err != nil {
		return nil, nil, err
	}
	cfg.DataDir, cfg.Replicas, cfg.Name, cfg.Version, cfg.Logger = data, sf.replicas, sf.name, version, logger
	cfg.Gateway, cfg.OpenReads = sf.http, sf.openReads
	if cfg.LegacyOpen, err = gateway.ParseNetworks(sf.legacyOpen); err != nil {
		return nil, nil, fmt.Errorf("%w: --legacy-open: %v", errUsage, err)
	}
	if cfg.CORSOrigins, err = gateway.ParseOrigins(sf.corsOrigins); err != nil {
		return nil, nil, fmt.Errorf("%w: --cors-origins: %v", errUsage, err)
	}
	if len(cfg.LegacyOpen) > 0 && sf.http == "" {
		return nil, nil, fmt.Errorf("%w: --legacy-open needs the HTTP gateway (--http)", errUsage)
	}
	minFree, err := taskd.ParseBytes(sf.minFree)
	if err != nil || minFree < 0 {
		return nil, nil, fmt.Errorf("%w: --min-free %q: want a size such as 256MiB", errUsage, sf.minFree)
	}
	cfg.MinFree = uint64(minFree)
	cfg.Auth, cfg.TLSCert, cfg.TLSKey, cfg.LeafNodes = sf.auth, sf.tlsCert, sf.tlsKey, sf.leafnodes
	c, err := cloud.Open(ctx, cfg)
	return c, logger, err
}

func serve(out io.Writer, sf serveFlags, cfg cloud.Config) error {
	ctx, stop := interrupted()
	defer stop()
	c, logger, err := openCloud(ctx, sf, cfg)
	if err != nil {
		return err
	}
	defer closeBounded(c, logger)
	data := c.DataDir()
	if url := c.ClientURL(); url != "" {
		fmt.Fprintf(out, "flmngr %s is up\n  NATS:  %s\n  data:  %s\n  views: %d events applied\n", version, url, data, c.Views.Applied())
	} else {
		fmt.Fprintf(out, "flmngr %s cloud is up on %s\n  views: %s (%d events applied)\n", version, strings.Split(cfg.NATSURL, ",")[0], data, c.Views.Applied())
	}
	printGateway(out, c)
	printAuth(out, c)
	printIsolation(out)
	fmt.Fprintf(out, "\nStop with Ctrl-C.\n")
	select {
	case <-ctx.Done():
		logger.Info("shutting down", "signal", context.Cause(ctx))
	case err := <-c.Errors():
		return err
	}
	return nil
}

// printAuth tells where the operators' credentials are and how clients
// get theirs.
func printAuth(out io.Writer, c *cloud.Cloud) {
	if c.Trust == nil {
		if c.ClientURL() != "" {
			fmt.Fprintf(out, "  NATS authentication is OFF (--auth=false): anyone who reaches %s can act as anyone\n", c.ClientURL())
		}
		return
	}
	verb := "in"
	if c.OperatorCredsCreated {
		verb = "created in"
	}
	if u := c.LeafURL(); u != "" {
		fmt.Fprintf(out, "  leaf nodes: %s (flmngr client --leaf %s --creds ID.creds)\n", u, u)
	}
	fmt.Fprintf(out, "  operator credentials: %s %s (the CLI finds them there, or pass --creds)\n", verb, c.OperatorCreds)
	fmt.Fprintf(out, "  client credentials: flmngr client-credentials create ID, then flmngr client --id ID --creds ID.creds\n")
}

// printGateway shows where the console is and, the first time only, the
// admin token.
func printGateway(out io.Writer, c *cloud.Cloud) {
	if c.GatewayURL() == "" {
		return
	}
	fmt.Fprintf(out, "  HTTP:  %s (API under /api/v1, web console at /)\n", c.GatewayURL())
	if open := c.LegacyOpen(); len(open) > 0 {
		nets := make([]string, len(open))
		for i, p := range open {
			nets[i] = p.String()
		}
		fmt.Fprintf(out, "  !! LEGACY MODE: anyone on %s may create, start, stop and upload tasks and change users through the original's endpoints WITHOUT the admin token (--legacy-open)\n", strings.Join(nets, ", "))
	}
	tokenFile := filepath.Join(c.DataDir(), "admin-token")
	if c.TokenCreated {
		fmt.Fprintf(out, "  admin token (shown this once; kept in %s):\n    %s\n", tokenFile, c.AdminToken)
	} else {
		fmt.Fprintf(out, "  admin token: in %s\n", tokenFile)
	}
}

// registerListen adds the embedded NATS server's address.
func registerListen(fs *flag.FlagSet) *string {
	return fs.String("listen", envOr("FLMNGR_LISTEN", "127.0.0.1:4222"), "address of the embedded NATS server for the CLI and client agents ($FLMNGR_LISTEN)")
}

// envOr is the environment variable's value, or def when it is unset.
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

// printIsolation says, once, how task processes are isolated here.
func printIsolation(out io.Writer) {
	i := taskd.Isolation()
	if i.Cgroups {
		fmt.Fprintf(out, "  task processes: a cgroup each, under %s (a stop ends all they started)\n", i.Base)
		return
	}
	fmt.Fprintf(out, "  task processes: process groups only (%s): a process that leaves its group outlives its task\n", i.Reason)
}

// shutdownBound is how long a stopping cloud may take to stop its
// servers, record their ends and close its stores.
const shutdownBound = 45 * time.Second

// closeBounded closes the cloud, and gives up waiting after
// shutdownBound: the process then exits, and its task processes die with
// it.
func closeBounded(c *cloud.Cloud, logger *slog.Logger) {
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownBound):
		logger.Error("shutdown did not complete; exiting anyway", "after", shutdownBound)
	}
}
