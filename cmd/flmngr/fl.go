package main

import (
	"bytes"
	"context"
	"encoding/json"
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
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(out, flUsage)
		if len(args) == 0 {
			return fmt.Errorf("%w: a role is required (server or client)", errUsage)
		}
		return nil
	}
	switch args[0] {
	case "server":
		return flServer(args[1:], out)
	case "client":
		return flClient(args[1:], out)
	}
	return fmt.Errorf("%w: unknown role %q (server or client)", errUsage, args[0])
}

// taskAddr is the task's host:port from the environment flmngr gives task
// processes, or a default.
func taskAddr(def string) string {
	if h, p := os.Getenv("FLMNGR_HOST"), os.Getenv("FLMNGR_PORT"); h != "" && p != "" {
		return net.JoinHostPort(h, p)
	}
	return def
}

// flConfig is the JSON form of the flags, for a config file uploaded with
// the task; flags given on the command line win.
type flConfig struct {
	Rounds          *int     `json:"rounds"`
	MinClients      *int     `json:"min_clients"`
	Epochs          *int     `json:"epochs"`
	LR              *float64 `json:"lr"`
	BatchSize       *int     `json:"batch_size"`
	WaitClients     *string  `json:"wait_clients"`
	Trigger         *string  `json:"trigger"`
	TriggerAccuracy *float64 `json:"trigger_accuracy"`
	Partitions      *int     `json:"partitions"`
	NonIID          *bool    `json:"non_iid"`
}

// applyConfig sets, from a JSON file, the flags not given explicitly.
func applyConfig(fs *flag.FlagSet, path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	var c flConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	set := setFlags(fs)
	apply := func(name string, v any, ok bool) error {
		if !ok || set[name] || fs.Lookup(name) == nil {
			return nil
		}
		return fs.Set(name, fmt.Sprint(v))
	}
	for _, err := range []error{
		apply("rounds", deref(c.Rounds), c.Rounds != nil),
		apply("min-clients", deref(c.MinClients), c.MinClients != nil),
		apply("epochs", deref(c.Epochs), c.Epochs != nil),
		apply("lr", deref(c.LR), c.LR != nil),
		apply("batch", deref(c.BatchSize), c.BatchSize != nil),
		apply("wait", deref(c.WaitClients), c.WaitClients != nil),
		apply("trigger", deref(c.Trigger), c.Trigger != nil),
		apply("trigger-accuracy", deref(c.TriggerAccuracy), c.TriggerAccuracy != nil),
		apply("partitions", deref(c.Partitions), c.Partitions != nil),
		apply("non-iid", deref(c.NonIID), c.NonIID != nil),
	} {
		if err != nil {
			return fmt.Errorf("config %s: %w", path, err)
		}
	}
	return nil
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

func flServer(args []string, out io.Writer) error {
	fs := newFlags("fl server", "fl server [--listen HOST:PORT] [flags]", "Runs the FedAvg server: waits for its clients, runs the rounds, reports each\nround's accuracy and ends with Finished (or an error line).")
	listen := fs.String("listen", taskAddr("127.0.0.1:8080"), "address to listen on (default: the task's host:port)")
	rounds := fs.Int("rounds", 3, "rounds of federated averaging")
	minClients := fs.Int("min-clients", 2, "clients that train in every round")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the clients")
	epochs := fs.Int("epochs", 1, "local epochs per round")
	lr := fs.Float64("lr", 0.1, "learning rate")
	batch := fs.Int("batch", 32, "mini-batch size")
	trigger := fs.String("trigger", "", "trigger to fire once the accuracy reaches --trigger-accuracy")
	triggerAcc := fs.Float64("trigger-accuracy", 0.9, "accuracy that fires --trigger")
	config := fs.String("config", "", "JSON file with these settings (flags win)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := applyConfig(fs, *config); err != nil {
		return err
	}
	// SIGTERM ends the process at once, as flmngr's stop expects of a
	// task; there is nothing to save.
	return silent(fedavg.RunServer(context.Background(), fedavg.ServerConfig{
		Listen: *listen, Rounds: *rounds, MinClients: *minClients, WaitClients: *wait,
		Train:   fedavg.TrainConfig{Epochs: *epochs, LR: *lr, BatchSize: *batch},
		Trigger: *trigger, TriggerAccuracy: *triggerAcc, Out: out,
	}))
}

func flClient(args []string, out io.Writer) error {
	fs := newFlags("fl client", "fl client [--server HOST:PORT] [flags] [WORKDIR] [test-error]", "Runs a FedAvg client: trains on its partition of MNIST in every round and\nends with Finished (or an error line). A WORKDIR argument, as flmngr passes\nby default, is accepted and ignored; the argument test-error makes the\nclient fail once its data is loaded, as the original's did.")
	server := fs.String("server", taskAddr("127.0.0.1:8080"), "server address (default: the task's host:port)")
	id := fs.String("id", os.Getenv("FLMNGR_CLIENT"), "client id (default: the agent's client)")
	partitions := fs.Int("partitions", 2, "how many partitions the training set is cut into")
	partition := fs.Int("partition", -1, "this client's partition (default: from the client id)")
	nonIID := fs.Bool("non-iid", false, "label-skewed partitions instead of IID ones")
	connect := fs.Duration("connect-timeout", time.Minute, "how long to wait for the server to listen")
	config := fs.String("config", "", "JSON file with these settings (flags win)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := applyConfig(fs, *config); err != nil {
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
		Server: *server, ClientID: *id, Partitions: *partitions, Partition: *partition, NonIID: *nonIID,
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
