package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/services/agent"
	"github.com/flmngr/flmngr/services/auth"
)

func runClient(args []string, out io.Writer) error {
	fs := newFlags("client", "client --id ID [--sensors a,b] [--data-qnt N] [--attr k=v]... [flags]",
		"Runs a client agent: registers the client with its attributes, follows the tasks\n"+
			"it is offered and runs them (download, verify, run the client process), with\n"+
			"quarantine and failover when a task errors. Stop it with Ctrl-C.")
	var cf connFlags
	cf.register(fs)
	id := fs.String("id", os.Getenv("FLMNGR_CLIENT_ID"), "client ID (the original's user_id) ($FLMNGR_CLIENT_ID)")
	info := registerInfo(fs)
	infoFile := fs.String("info-file", "", "JSON file of attributes, reported again whenever it changes")
	workdir := fs.String("workdir", "", "work directory: tasks run in <workdir>/tasks/task_<id> (default: a directory per client under the user's cache)")
	policy := fs.String("policy", agent.PolicyOne, "one: run one task at a time; all: run every offered task")
	maxTasks := fs.Int("max-tasks", 0, "with --policy all, run at most this many tasks at once (0: no limit)")
	heartbeat := fs.Duration("heartbeat", 5*time.Second, "interval between heartbeats")
	grace := fs.Duration("grace", 5*time.Second, "how long a stopped task process may take before SIGKILL")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	leaf := fs.String("leaf", "", "run a NATS leaf node in the agent linked to the cloud's leaf node port (nats-leaf://cloud:7422[,…]): the agent's own connection never drops on a bad link, and the reports that wait for the cloud are kept in the leaf's own JetStream under the work directory; needs --creds")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	if *id == "" {
		return fmt.Errorf("%w: --id is required", errUsage)
	}
	logger, err := (&serveFlags{logLevel: *logLevel}).logger()
	if err != nil {
		return err
	}
	if *workdir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		*workdir = filepath.Join(base, "flmngr", "client-"+*id)
	}
	abs, err := filepath.Abs(*workdir)
	if err != nil {
		return err
	}
	cfg := agent.Config{
		ClientID: *id, Info: info.info(), InfoFile: *infoFile, WorkDir: abs,
		Policy: *policy, MaxTasks: *maxTasks, Heartbeat: *heartbeat, Grace: *grace,
		Logger: logger.With("component", "agent", "client_id", *id),
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	opts, err := cf.options(cf.creds)
	if err != nil {
		return err
	}
	// Replies come to the client's own inbox: its identity may read no
	// other. A lost link is retried for ever; so is a refused key, which
	// an operator may issue any moment.
	opts = append(opts, nats.Name("flmngr-client "+*id), nats.CustomInboxPrefix(auth.InboxPrefix(*id)),
		nats.MaxReconnects(-1), nats.ReconnectWait(time.Second), nats.Timeout(5*time.Second), nats.IgnoreAuthErrorAbort())
	url := cf.url
	if *leaf != "" {
		if cf.creds == "" {
			return fmt.Errorf("%w: --leaf needs the client's key (--creds)", errUsage)
		}
		kp, err := auth.ReadKey(cf.creds)
		if err != nil {
			return err
		}
		ns, err := agent.StartLeaf(agent.LeafConfig{Name: "flmngr-leaf-" + *id, Remotes: strings.Split(*leaf, ","), Key: kp, CAFile: cf.tlsCA, Logger: logger,
			StoreDir: filepath.Join(abs, "leaf")})
		if err != nil {
			return err
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		opts = []nats.Option{nats.InProcessServer(ns), nats.Name("flmngr-client " + *id), nats.CustomInboxPrefix(auth.InboxPrefix(*id)), nats.MaxReconnects(-1)}
		url = *leaf
	}
	nc, err := nats.Connect(url, opts...)
	// A connection that arrives while the server reloads its identities
	// (another client's key was just issued) may be refused or cut once,
	// and a cloud may be starting: try a few times before giving up.
	for try := 1; err != nil && try < 5; try++ {
		logger.Warn("connection refused; trying again", "attempt", try, "err", err)
		time.Sleep(time.Second)
		nc, err = nats.Connect(url, opts...)
	}
	if err != nil {
		return cf.connectError(err, "create the client's key with flmngr client-credentials create "+*id+" and pass it with --creds")
	}
	defer nc.Close()
	if *leaf != "" {
		// The reports that wait for the cloud stay in the leaf node's own
		// JetStream, on this site's disk.
		if cfg.Journal, err = jetstream.NewWithDomain(nc, agent.LeafDomain); err != nil {
			return err
		}
	}
	a, err := agent.New(nc, cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *leaf != "" {
		fmt.Fprintf(out, "client %s: leaf node linked to %s (policy %s, work directory %s)\n", *id, url, cfg.Policy, abs)
	} else {
		fmt.Fprintf(out, "client %s connected to %s (policy %s, work directory %s)\n", *id, nc.ConnectedUrlRedacted(), cfg.Policy, abs)
	}
	return a.Run(ctx)
}
