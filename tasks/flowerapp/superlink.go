package flowerapp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ServerConfig configures the cloud's side of a Flower App task.
type ServerConfig struct {
	// Listen is the Fleet API's host:port, the task's host and port: the
	// SuperNodes connect there. The ServerAppIo API takes port+1 and the
	// Control API port+2, both on 127.0.0.1.
	Listen string
	// App is the Flower App's directory (the task's files).
	App string
	// State holds the SuperLink's database (node ids and runs survive its
	// restarts during the run; each run starts with a fresh one), its
	// storage, Flower's home directory, the TLS files the cloud issued
	// (tls/, see IssueTLS) and the SuperNode keys it admits (supernodes/,
	// see Admit).
	State string
	// RunConfig overrides the app's run config, "key=value" pairs.
	RunConfig []string
	// Poll is how often the run's status is read (default 2s).
	Poll time.Duration
	// Report gets the report protocol lines, Log the Flower processes'
	// output.
	Report *Reporter
	Log    io.Writer
}

// apiAddrs are the SuperLink's three API addresses.
type apiAddrs struct{ fleet, serverAppIo, control string }

func (c ServerConfig) addrs() (apiAddrs, error) {
	host, p, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return apiAddrs{}, fmt.Errorf("listen address %q: %w", c.Listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65533 {
		return apiAddrs{}, fmt.Errorf("listen address %q: the port must be 1-65533 (the next two ports are the SuperLink's local APIs)", c.Listen)
	}
	local := func(n int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n)) }
	return apiAddrs{fleet: net.JoinHostPort(host, p), serverAppIo: local(port + 1), control: local(port + 2)}, nil
}

// flowerEnv is the environment of Flower's processes: Flower keeps its
// installed apps under FLWR_HOME, here the task's state directory.
func flowerEnv(state string) []string {
	return append(os.Environ(), "FLWR_HOME="+filepath.Join(state, "home"), "PYTHONUNBUFFERED=1")
}

// RunServer runs a SuperLink for the task, submits the app, follows the
// run to its end and reports each step. It returns nil once the run
// completed (having reported Finished) or ctx ended (the run stopped
// with `flwr stop`), and an error for a run that failed.
func RunServer(ctx context.Context, cfg ServerConfig) error {
	cfg.Poll = cmp.Or(cfg.Poll, 2*time.Second)
	addrs, err := cfg.addrs()
	if err != nil {
		return err
	}
	if cfg.State, err = filepath.Abs(cfg.State); err != nil {
		return err
	}
	ca, cert, key, err := tlsFiles(cfg.State)
	if err != nil {
		return err
	}
	// A fresh database: no SuperNode registered for an earlier run (with
	// keys from then) is let in.
	for _, f := range []string{"state.db", "state.db-journal", "state.db-wal", "state.db-shm"} {
		if err := os.Remove(filepath.Join(cfg.State, f)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("state directory: %w", err)
		}
	}
	if err := os.MkdirAll(filepath.Join(cfg.State, "store"), 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := WriteFederation(cfg.App, addrs.control, ca); err != nil {
		return err
	}
	env := flowerEnv(cfg.State)
	sl := &superlink{cfg: cfg, addrs: addrs, env: env, exited: make(chan struct{}, 1), tls: [3]string{ca, cert, key}}
	if err := sl.start(); err != nil {
		return fmt.Errorf("cannot start the SuperLink: %w", err)
	}
	defer sl.stop()
	if err := waitListening(ctx, addrs.control, 2*time.Minute, sl); err != nil {
		return err
	}
	cli := CLI{App: cfg.App, Federation: Federation, Env: env}
	// The SuperNodes the cloud admits are registered from now until the
	// run ends.
	mctx, stopMembers := context.WithCancel(ctx)
	var membersDone sync.WaitGroup
	membersDone.Go(func() { newMembers(cli, cfg.State, cfg.Report, cfg.Log).run(mctx, time.Second) })
	defer membersDone.Wait()
	defer stopMembers()
	info, err := cli.Submit(ctx, cfg.RunConfig)
	if err != nil {
		return fmt.Errorf("the run was not submitted: %w", err)
	}
	cfg.Report.Step("run_submitted", "run "+info.RunID+" fab "+info.FabHash)
	cfg.Report.Info("Started")
	return sl.follow(ctx, cli, info.RunID)
}

// superlink supervises the SuperLink process: restarted whenever it exits
// until the driver stops it.
type superlink struct {
	cfg      ServerConfig
	addrs    apiAddrs
	env      []string
	tls      [3]string // CA, certificate, key
	mu       sync.Mutex
	proc     *child
	stopping bool
	restarts int
	exited   chan struct{}
	rounds   Rounds
	reported int // the last round reported
}

func (s *superlink) argv() []string {
	return []string{"flower-superlink",
		"--ssl-ca-certfile", s.tls[0], "--ssl-certfile", s.tls[1], "--ssl-keyfile", s.tls[2],
		"--enable-supernode-auth",
		"--database", filepath.Join(s.cfg.State, "state.db"),
		"--storage-dir", filepath.Join(s.cfg.State, "store"),
		"--fleet-api-address", s.addrs.fleet,
		"--serverappio-api-address", s.addrs.serverAppIo,
		"--control-api-address", s.addrs.control}
}

func (s *superlink) start() error {
	s.mu.Lock()
	if s.stopping {
		s.mu.Unlock()
		return nil
	}
	p, err := startChild(s.argv(), s.env, s.onLine)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.proc = p
	s.mu.Unlock()
	s.cfg.Report.Step("superlink_started", fmt.Sprintf("pid %d fleet %s control %s", p.pid(), s.addrs.fleet, s.addrs.control))
	go s.watch(p)
	return nil
}

// maxRestarts bounds how often the SuperLink may die during one run.
const maxRestarts = 5

// watch restarts the SuperLink when it exits unasked.
func (s *superlink) watch(p *child) {
	<-p.done
	s.mu.Lock()
	stopping := s.stopping
	s.restarts++
	n := s.restarts
	s.mu.Unlock()
	if stopping {
		return
	}
	s.cfg.Report.Step("superlink_exited", fmt.Sprintf("exit code %d", p.code()))
	if n > maxRestarts {
		select {
		case s.exited <- struct{}{}:
		default:
		}
		return
	}
	time.Sleep(time.Second) // its ports are released
	if err := s.start(); err != nil {
		fmt.Fprintf(s.cfg.Log, "superlink: cannot restart: %v\n", err)
		select {
		case s.exited <- struct{}{}:
		default:
		}
	}
}

// onLine forwards the SuperLink's output (it carries the ServerApp's log)
// and reports each round as its log completes.
func (s *superlink) onLine(line string) {
	fmt.Fprintln(s.cfg.Log, "superlink: "+line)
	if r, ok := s.rounds.Feed(line); ok {
		s.round(r)
	}
}

func (s *superlink) round(r Round) {
	s.mu.Lock()
	fresh := r.Number > s.reported
	if fresh {
		s.reported = r.Number
	}
	s.mu.Unlock()
	if fresh {
		s.cfg.Report.Round(r)
	}
}

func (s *superlink) stop() {
	s.mu.Lock()
	s.stopping = true
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		p.terminate(10 * time.Second)
		<-p.read
	}
}

// follow polls the run's status until it ends or ctx does.
func (s *superlink) follow(ctx context.Context, cli CLI, runID string) error {
	last, failures := "", 0
	tick := time.NewTicker(s.cfg.Poll)
	defer tick.Stop()
	for {
		st, err := cli.Status(ctx, runID)
		switch {
		case ctx.Err() != nil:
			return s.stopRun(cli, runID)
		case err != nil:
			failures++
			fmt.Fprintf(s.cfg.Log, "flwr ls: %v\n", err)
			if failures >= 15 {
				return fmt.Errorf("the run's status cannot be read: %w", err)
			}
		default:
			failures = 0
			if st.Status != last {
				last = st.Status
				s.cfg.Report.Step("run_status", strings.TrimSpace(st.Status+" elapsed "+st.Elapsed))
			}
			if st.Done() {
				return s.finish(ctx, cli, runID, st)
			}
		}
		select {
		case <-ctx.Done():
			return s.stopRun(cli, runID)
		case <-s.exited:
			return fmt.Errorf("the SuperLink exited %d times during the run", maxRestarts+1)
		case <-tick.C:
		}
	}
}

// finish records the run's log and its outcome.
func (s *superlink) finish(ctx context.Context, cli CLI, runID string, st RunStatus) error {
	log, err := cli.Log(ctx, runID)
	lines := strings.Split(strings.TrimRight(log, "\n"), "\n")
	for _, l := range lines {
		fmt.Fprintln(s.cfg.Log, "flwr log: "+l)
	}
	if err != nil {
		fmt.Fprintf(s.cfg.Log, "%v\n", err)
	} else {
		// Rounds the SuperLink's output did not show complete.
		var rs Rounds
		for _, l := range lines {
			if r, ok := rs.Feed(l); ok {
				s.round(r)
			}
		}
		if r, ok := rs.Flush(); ok && st.Status == StatusCompleted {
			s.round(r)
		}
		s.cfg.Report.Step("log_recorded", fmt.Sprintf("%d lines", len(lines)))
	}
	if st.Status == StatusCompleted {
		s.cfg.Report.Info("Finished")
		return nil
	}
	return fmt.Errorf("the Flower run %s ended %s after %s: %s", runID, st.Status, st.Elapsed, lastLines(log, 3))
}

// stopRun stops the run with `flwr stop`, while the SuperLink still runs.
func (s *superlink) stopRun(cli CLI, runID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := cli.Stop(ctx, runID); err != nil {
		fmt.Fprintf(s.cfg.Log, "%v\n", err)
		return nil
	}
	s.cfg.Report.Step("run_stopped", "run "+runID)
	return nil
}

// waitListening waits until addr accepts connections.
func waitListening(ctx context.Context, addr string, limit time.Duration, s *superlink) error {
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the SuperLink's Control API %s is not reachable after %s", addr, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.exited:
			return errors.New("the SuperLink keeps exiting")
		case <-tick.C:
		}
	}
}
