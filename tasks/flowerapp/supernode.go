package flowerapp

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// ClientConfig configures a client's side of a Flower App task.
type ClientConfig struct {
	// SuperLink is the Fleet API's host:port (the task's host and port).
	SuperLink string
	// Client is this client's id: the SuperNode's node config carries it
	// as flmngr-client-id.
	Client string
	// NodeConfig adds "key=value" pairs to the node config
	// (partition-id=0, say).
	NodeConfig []string
	// State holds Flower's home directory for this SuperNode, the
	// SuperLink's CA certificate and the SuperNode's private key, which
	// the agent wrote there (see PrepareNode).
	State string
	// FastFailures is how many exits in a row, each within a short run
	// and with an error code, end the task as failed (default 5): a
	// SuperNode the SuperLink refuses does not retry for ever.
	FastFailures int
	// AdmitWait is how long a SuperNode the SuperLink refuses is started
	// again without counting as a failure (default 3m), from the driver's
	// start (the cloud registers the key once the agent reported it) or
	// the last exit of a SuperNode that ran (one killed stays online for
	// Flower until its heartbeats time out).
	AdmitWait time.Duration
	Report    *Reporter
	Log       io.Writer
}

// refusals are what a SuperNode prints when the SuperLink does not let it
// in yet: its key is not registered yet, or the node is still online
// from a SuperNode that died without saying goodbye (SIGKILL: Flower
// waits for its heartbeats to time out, about a minute).
var refusals = []string{"No SuperNode found with the given public key", "All SuperNodes must be registered", "could not be activated"}

// fastExit is how long a SuperNode must have run for its exit not to
// count as a failure to start.
const fastExit = 10 * time.Second

// NodeConfigArg is the --node-config value of the SuperNode.
func (c ClientConfig) NodeConfigArg() string {
	pairs := []string{fmt.Sprintf("flmngr-client-id=%q", c.Client)}
	for _, nc := range c.NodeConfig {
		pairs = append(pairs, strings.Fields(nc)...)
	}
	return strings.Join(pairs, " ")
}

// RunClient runs a SuperNode connected to the task's SuperLink and
// restarts it whenever it exits (a SuperLink that restarted without its
// node ids makes it exit with code 0), with a backoff, until ctx ends.
// It returns an error once the SuperNode failed to start FastFailures
// times in a row.
func RunClient(ctx context.Context, cfg ClientConfig) error {
	cfg.FastFailures = cmp.Or(cfg.FastFailures, 5)
	cfg.AdmitWait = cmp.Or(cfg.AdmitWait, 3*time.Minute)
	state, err := filepath.Abs(cfg.State)
	if err != nil {
		return err
	}
	ca, key, err := nodeFiles(state)
	if err != nil {
		return err
	}
	env := flowerEnv(state)
	begin := time.Now()
	fast, backoff, started := 0, time.Second, false
	for {
		port, err := freePort()
		if err != nil {
			return err
		}
		argv := []string{"flower-supernode", "--superlink", cfg.SuperLink,
			"--root-certificates", ca, "--auth-supernode-private-key", key,
			"--clientappio-api-address", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			"--node-config", cfg.NodeConfigArg()}
		var refused atomic.Bool
		p, err := startChild(argv, env, func(l string) {
			fmt.Fprintln(cfg.Log, "supernode: "+l)
			for _, r := range refusals {
				if strings.Contains(l, r) {
					refused.Store(true)
				}
			}
		})
		if err != nil {
			return fmt.Errorf("cannot start the SuperNode: %w", err)
		}
		at := time.Now()
		cfg.Report.Step("supernode_started", fmt.Sprintf("pid %d clientappio 127.0.0.1:%d", p.pid(), port))
		if !started {
			started = true
			cfg.Report.Info("Started")
		}
		select {
		case <-ctx.Done():
			p.terminate(3 * time.Second)
			return nil
		case <-p.done:
		}
		<-p.read
		ran, code := time.Since(at), p.code()
		if !refused.Load() && ran >= fastExit {
			begin = time.Now() // it was in: a refusal from now on is new
		}
		waiting := refused.Load() && time.Since(begin) < cfg.AdmitWait
		switch {
		case waiting:
			// Not registered yet: the cloud registers the key it was told.
			fast, backoff = 0, 2*time.Second
		case ran < fastExit && code != 0:
			fast++
		default:
			fast, backoff = 0, time.Second
		}
		if fast >= cfg.FastFailures {
			return fmt.Errorf("the SuperNode exited with code %d %d times in a row within %s of starting; is this client refused by the SuperLink at %s?", code, fast, fastExit, cfg.SuperLink)
		}
		what := "supernode_exited"
		if waiting {
			what = "supernode_refused"
		}
		cfg.Report.Step(what, fmt.Sprintf("exit code %d after %s; restarting in %s", code, ran.Round(time.Millisecond), backoff))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		if !waiting {
			backoff = min(2*backoff, 20*time.Second)
		}
	}
}

// freePort returns a loopback port nothing listens on: SuperNodes on one
// host need distinct ClientAppIo ports.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("no free port for the ClientAppIo API: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
