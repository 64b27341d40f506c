package flowerapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Usage is the help of `flmngr flower`.
const Usage = `Usage: flmngr flower <superlink|supernode> [flags]

The drivers of a Flower App task (task kind flower-app): flmngr runs
'flower superlink' on the cloud and 'flower supernode' on each matching
client. They run Flower's own processes (flower-superlink,
flower-supernode, flwr: on PATH) and report on stdout in flmngr's report
protocol. A task of kind flower-app runs them unless it names its own
commands; its server arguments go to 'superlink' (--run-config), its
client arguments to 'supernode' (--node-config).

Run 'flmngr flower superlink --help' or 'flmngr flower supernode --help'
for the flags.`

// ErrUsage marks a command line that is wrong.
var ErrUsage = errors.New("usage")

type pairs []string

func (p *pairs) String() string     { return strings.Join(*p, " ") }
func (p *pairs) Set(v string) error { *p = append(*p, v); return nil }

// Command runs `flmngr flower ARGS`: a driver until it ends or ctx does
// (the process was asked to stop). A failure is reported on stdout as the
// report protocol's error line and returned.
func Command(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(stdout, Usage)
		if len(args) == 0 {
			return fmt.Errorf("%w: a role is required (superlink or supernode)", ErrUsage)
		}
		return nil
	}
	rep := NewReporter(stdout)
	fs := flag.NewFlagSet("flmngr flower "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var run func() error
	switch args[0] {
	case "superlink":
		cfg := ServerConfig{Report: rep, Log: stderr}
		var rc pairs
		fs.StringVar(&cfg.Listen, "listen", "", "the Fleet API's `host:port` (the task's); port+1 and port+2 on 127.0.0.1 serve ServerAppIo and Control")
		fs.StringVar(&cfg.App, "app", ".", "the Flower App's `directory`")
		fs.StringVar(&cfg.State, "state", "flower-state", "the SuperLink's state `directory` (database, storage; TLS files in tls/ and the admitted SuperNode keys in supernodes/, written by the cloud)")
		fs.Var(&rc, "run-config", "run config override `key=value` (repeatable)")
		fs.DurationVar(&cfg.Poll, "poll", 2*time.Second, "how often the run's status is read")
		run = func() error { cfg.RunConfig = rc; return RunServer(ctx, cfg) }
	case "supernode":
		cfg := ClientConfig{Report: rep, Log: stderr}
		var nc pairs
		fs.StringVar(&cfg.SuperLink, "superlink", "", "the SuperLink's Fleet API `host:port` (the task's)")
		fs.StringVar(&cfg.Client, "client", "", "this client's `id`, given to the ClientApp as node config flmngr-client-id")
		fs.StringVar(&cfg.State, "state", "flower-state", "Flower's home `directory` for this SuperNode, with the SuperLink's CA certificate (ca.pem) and the SuperNode's key (supernode.key), written by the agent")
		fs.Var(&nc, "node-config", "node config `key=value` pairs (repeatable)")
		fs.IntVar(&cfg.FastFailures, "fast-failures", 5, "failed starts in a row that fail the task")
		fs.DurationVar(&cfg.AdmitWait, "admit-wait", 3*time.Minute, "how long a SuperNode the SuperLink refuses (its key not registered yet, or its node still online after a crash) is restarted without counting as a failure")
		run = func() error { cfg.NodeConfig = nc; return RunClient(ctx, cfg) }
	default:
		return fmt.Errorf("%w: unknown role %q (superlink or supernode)", ErrUsage, args[0])
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %v", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", ErrUsage, fs.Arg(0))
	}
	err := run()
	if err != nil && ctx.Err() == nil {
		rep.Error(err.Error())
		return err
	}
	return nil
}
