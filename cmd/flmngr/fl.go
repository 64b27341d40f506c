package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"time"

	"github.com/flmngr/flmngr/tasks/fedavg"
)

const flUsage = `Usage: flmngr fl <server|client> [flags]

The Flower-free FedAvg task: softmax regression on MNIST trained by
federated averaging. Both roles speak the report protocol on stdout, so
flmngr supervises them like any task:

  flmngr task create fedavg --host 127.0.0.1 --port 8080 \
    --server-cmd "{flmngr} fl server --listen {host}:{port}" \
    --client-cmd "{flmngr} fl client --server {host}:{port}"

Run 'flmngr fl server --help' or 'flmngr fl client --help' for the flags.`

func runFL(args []string, out io.Writer) error {
	return subcommands(args, out, flUsage, "role", subcommand{"server", flServer}, subcommand{"client", flClient})
}

// taskAddr is the task's host:port from the environment flmngr gives task
// processes, or a default.
func taskAddr(def string) string {
	if h, p := os.Getenv("FLMNGR_HOST"), os.Getenv("FLMNGR_PORT"); h != "" && p != "" {
		return net.JoinHostPort(h, p)
	}
	return def
}

// applyConfig reads the settings file at path over cfg; the flags given
// on the command line win.
func applyConfig(fs *flag.FlagSet, path string, cfg *fedavg.Config) error {
	if path == "" {
		return nil
	}
	given := map[string]string{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })
	c, err := cfg.Read(path)
	if err != nil {
		return err
	}
	*cfg = c
	for name, v := range given {
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	return nil
}

func flServer(args []string, out io.Writer) error {
	fs := newFlags("fl server", "fl server [--listen HOST:PORT] [flags]", "Runs the FedAvg server: waits for its clients, runs the rounds, reports each\nround's accuracy and ends with Finished (or an error line).")
	cfg := fedavg.DefaultConfig()
	listen := fs.String("listen", taskAddr("127.0.0.1:8080"), "address to listen on (default: the task's host:port)")
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "rounds of federated averaging")
	fs.IntVar(&cfg.MinClients, "min-clients", cfg.MinClients, "clients that train in every round")
	fs.DurationVar((*time.Duration)(&cfg.WaitClients), "wait", time.Duration(cfg.WaitClients), "how long to wait for the clients")
	fs.IntVar(&cfg.Epochs, "epochs", cfg.Epochs, "local epochs per round")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "learning rate")
	fs.IntVar(&cfg.BatchSize, "batch", cfg.BatchSize, "mini-batch size")
	fs.StringVar(&cfg.Trigger, "trigger", cfg.Trigger, "trigger to fire once the accuracy reaches --trigger-accuracy")
	fs.Float64Var(&cfg.TriggerAccuracy, "trigger-accuracy", cfg.TriggerAccuracy, "accuracy that fires --trigger")
	config := fs.String("config", "", "JSON file with these settings (flags win)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := applyConfig(fs, *config, &cfg); err != nil {
		return err
	}
	// SIGTERM ends the process at once, as flmngr's stop expects of a
	// task; there is nothing to save.
	return silent(fedavg.RunServer(context.Background(), cfg.Server(*listen, out)))
}

func flClient(args []string, out io.Writer) error {
	fs := newFlags("fl client", "fl client [--server HOST:PORT] [flags] [WORKDIR] [test-error]", "Runs a FedAvg client: trains on its partition of MNIST in every round and\nends with Finished (or an error line). A WORKDIR argument, as flmngr passes\nby default, is accepted and ignored; the argument test-error makes the\nclient fail once its data is loaded, as the original's did.")
	cfg := fedavg.DefaultConfig()
	server := fs.String("server", taskAddr("127.0.0.1:8080"), "server address (default: the task's host:port)")
	id := fs.String("id", os.Getenv("FLMNGR_CLIENT"), "client id (default: the agent's client)")
	fs.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "how many partitions the training set is cut into")
	partition := fs.Int("partition", -1, "this client's partition (default: from the client id)")
	fs.BoolVar(&cfg.NonIID, "non-iid", cfg.NonIID, "label-skewed partitions instead of IID ones")
	connect := fs.Duration("connect-timeout", time.Minute, "how long to wait for the server to listen")
	config := fs.String("config", "", "JSON file with these settings (flags win)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := applyConfig(fs, *config, &cfg); err != nil {
		return err
	}
	fail := ""
	if slices.Contains(pos, "test-error") {
		fail = "test-error"
	}
	if *id == "" {
		*id, _ = os.Hostname()
	}
	return silent(fedavg.RunClient(context.Background(), fedavg.ClientConfig{
		Server: *server, ClientID: *id, Partitions: cfg.Partitions, Partition: *partition, NonIID: cfg.NonIID,
		ConnectTimeout: *connect, FailAfterLoad: fail, Out: out,
	}))
}

// errReported is an error the task already reported on stdout; the
// process only has to exit non-zero.
var errReported = fmt.Errorf("failed")

func silent(err error) error {
	if err != nil {
		return errReported
	}
	return nil
}
