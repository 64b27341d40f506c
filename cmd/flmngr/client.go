package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/flmngr/flmngr/services/agent"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/taskd"
)

func runClient(args []string, out io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "approve":
			return clientApprove(args[1:], out)
		case "approvals":
			return clientApprovals(args[1:], out)
		}
	}
	fs, cf := newOperatorFlags("client", "client --id ID [--sensors a,b] [--data-qnt N] [--attr k=v]... [flags]\n       flmngr client approve TASK [--workdir DIR] [--yes] [--revoke]\n       flmngr client approvals [--workdir DIR]",
		"Runs a client agent: registers the client with its attributes, follows the tasks\n"+
			"it is offered and runs them (download, verify, run the client process), with\n"+
			"quarantine and failover when a task errors. Stop it with Ctrl-C.")
	id := fs.String("id", os.Getenv("FLMNGR_CLIENT_ID"), "client ID (the original's user_id) ($FLMNGR_CLIENT_ID)")
	info := registerInfo(fs)
	infoFile := fs.String("info-file", "", "JSON file of attributes, reported again whenever it changes")
	workdir := fs.String("workdir", "", "work directory: tasks run in <workdir>/tasks/task_<id> (default: a directory per client under the user's cache)")
	policy := fs.String("policy", agent.PolicyOne, "one: run one task at a time; all: run every offered task")
	maxTasks := fs.Int("max-tasks", 0, "with --policy all, run at most this many tasks at once (0: no limit)")
	heartbeat := fs.Duration("heartbeat", 5*time.Second, "interval between heartbeats")
	grace := fs.Duration("grace", 5*time.Second, "how long a stopped task process may take before SIGKILL")
	drain := fs.Duration("drain", 5*time.Second, "at shutdown, how long to wait for the cloud to take the reports still waiting")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	trust := &listFlag{}
	fs.Var(trust, "trust", "run only tasks signed by one of these operator signing keys (public NKeys, comma-separated; flmngr signing-key create); others are refused and recorded")
	maxLimits := fs.String("max-limits", os.Getenv("FLMNGR_MAX_LIMITS"), "this site's ceiling on every task's client process, as in task create --limits: cpu=2,memory=2GiB,pids=256,walltime=2h; a task's own limits are capped by it, and a task without limits gets it ($FLMNGR_MAX_LIMITS)")
	enrolToken := fs.String("enrol", os.Getenv("FLMNGR_ENROL_TOKEN"), "enrol this device with a token from flmngr enrol create: it makes its key pair here and keeps the seed in <workdir>/identity (mode 0600); later starts use it ($FLMNGR_ENROL_TOKEN)")
	approval := fs.String("approval", agent.ApprovalAny, "any: run what is offered; manual: run a task only once this site approved its exact files and spec (flmngr client approve); trusted: run tasks signed by a --trust key at once, hold the others for approval")
	leaf := fs.String("leaf", "", "run a NATS leaf node in the agent linked to the cloud's leaf node port (nats-leaf://cloud:7422[,…]): the agent's own connection never drops on a bad link, and the reports that wait for the cloud are kept in the leaf's own JetStream under the work directory; needs --creds")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *id == "" {
		return fmt.Errorf("%w: --id is required", errUsage)
	}
	ceiling, err := taskd.ParseLimits(*maxLimits)
	if err != nil {
		return fmt.Errorf("%w: --max-%v", errUsage, err)
	}
	logger, err := (&serveFlags{logLevel: *logLevel}).logger()
	if err != nil {
		return err
	}
	if *workdir == "" {
		*workdir = cacheDir("client-" + *id)
	}
	abs, err := filepath.Abs(*workdir)
	if err != nil {
		return err
	}
	cfg := agent.Config{
		ClientID: *id, Info: info.info(), InfoFile: *infoFile, WorkDir: abs,
		Policy: *policy, MaxTasks: *maxTasks, Trust: trust.values, MaxLimits: ceiling, Approval: *approval, Heartbeat: *heartbeat, Grace: *grace, Drain: *drain,
		Logger: logger.With("component", "agent", "client_id", *id),
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return err
	}
	ctx, stop := interrupted()
	defer stop()
	var creds auth.Creds
	if cf.creds == "" {
		var attrs map[string]string
		if creds, attrs, err = deviceIdentity(ctx, cf, *id, *enrolToken, abs, out); err != nil {
			return err
		}
		cfg.Info = withEnrolledAttributes(cfg.Info, attrs)
	}
	if cf.creds != "" {
		if creds, err = auth.ReadCreds(cf.creds); err != nil {
			return fmt.Errorf("%w: --creds: %v", errUsage, err)
		}
		if name := creds.Name(); name != *id {
			return fmt.Errorf("%w: --creds %s are client %q's, not %q's", errUsage, cf.creds, name, *id)
		}
	} else if *leaf != "" && creds.Key == nil {
		return fmt.Errorf("%w: --leaf needs the client's credentials (--creds or --enrol)", errUsage)
	}
	conn, err := agent.Dial(ctx, agent.DialConfig{ClientID: *id, URL: cf.url, Creds: creds, CAFile: cf.tlsCA, Leaf: *leaf, WorkDir: abs, Logger: logger})
	if err != nil {
		return cf.connectError(err, "make the client's credentials with flmngr client-credentials create "+*id+" and pass them with --creds")
	}
	defer conn.Close()
	cfg.Journal = conn.Journal
	a, err := agent.New(conn.NC, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "client %s connected (%s; policy %s, work directory %s)\n", *id, conn.Where, cfg.Policy, abs)
	if cfg.Approval != agent.ApprovalAny {
		fmt.Fprintf(out, "approval %s: tasks held back are listed by flmngr client approvals --workdir %s\n", cfg.Approval, abs)
	}
	printIsolation(out)
	if !ceiling.IsZero() {
		fmt.Fprintf(out, "  limits ceiling: %s (no task gets more)\n", ceiling)
	}
	err = a.Run(ctx)
	if n := a.Pending(); n > 0 {
		fmt.Fprintf(out, "client %s: %d reports not delivered within %s (the cloud is unreachable); they are kept in %s and go out at the next start\n", *id, n, cfg.Drain, a.JournalPlace())
	}
	return err
}
