// Command flmngr is the single binary of flmngr: the embedded deployment
// (up), the cloud side on an external NATS (cloud), and the operator's CLI.
// It parses flags and wires concrete types; everything else lives in the
// packages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/flmngr/flmngr/commands/fault"
)

// version is stamped by make release (-ldflags -X main.version=...).
var version = "0.1.0-dev"

type command struct {
	name, summary string
	run           func(args []string, out io.Writer) error
}

func commandsList() []command {
	return []command{
		{"demo", "the main job: embedded deployment, two clients, a FedAvg run on MNIST, its timeline", runDemo},
		{"up", "run the embedded deployment: NATS + JetStream + every cloud service", runUp},
		{"cloud", "run the cloud services against an external NATS deployment", runCloud},
		{"client", "run a client agent: register, follow offers, run the offered tasks", runClient},
		{"client-credentials", "create or revoke a client agent's identity on NATS", runCredentials},
		{"signing-key", "make an operator signing key for tasks sites verify (--trust)", runSigningKey},
		{"enrol", "make a one-time token a device enrols with (it makes its own key)", runEnrol},
		{"cluster-config", "print the nats-server configuration of a node of a cluster that serves flmngr", runClusterConfig},
		{"task", "create, get, list, update, delete, upload, start and stop tasks", runTask},
		{"match", "preview which clients a selection criterion selects", runMatch},
		{"user", "register, report, get and list clients (users)", runUser},
		{"events", "print the event log, optionally following it", runEvents},
		{"logs", "print what a task's server and clients printed, optionally following it", runLogs},
		{"timeline", "print the timeline of a task, a client or everything, with step latencies", runTimeline},
		{"rebuild", "drop the views and replay them from the event log", runRebuild},
		{"status", "show how far the log and the views go", runStatus},
		{"fl", "run a role of the built-in FedAvg task (server or client)", runFL},
		{"flower", "run a driver of a Flower App task (superlink or supernode)", runFlower},
		{"experiment", "run the original's experiments 1 and 2, or recompute their figures from a timeline", runExperiment},
		{"version", "print the version", func(_ []string, out io.Writer) error { fmt.Fprintln(out, "flmngr", version); return nil }},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "flmngr %s manages federated-learning tasks across a cloud and its clients.\n\nUsage:\n  flmngr <command> [flags] [arguments]\n\nCommands:\n", version)
	for _, c := range commandsList() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'flmngr <command> --help' for a command's flags.\nThe CLI finds flmngr through --nats or $FLMNGR_NATS (default %s).\n", defaultNATS)
}

// errUsage marks errors that are the caller's way of using the CLI; they
// exit with status 2.
var errUsage = errors.New("usage")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(out)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args[0] = "version"
	}
	for _, c := range commandsList() {
		if c.name != args[0] {
			continue
		}
		name := c.name
		if len(args) > 1 && (c.name == "task" || c.name == "user" || c.name == "client-credentials" || c.name == "enrol" || c.name == "client") && !strings.HasPrefix(args[1], "-") {
			name += " " + args[1]
		}
		err := c.run(args[1:], out)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errReported):
			return 1
		case errors.Is(err, errUsage):
			fmt.Fprintf(errOut, "flmngr %s: %s\n", name, strings.TrimPrefix(err.Error(), "usage: "))
			return 2
		default:
			fmt.Fprintf(errOut, "flmngr %s: %s\n", name, oneLineError(err))
			return 1
		}
	}
	fmt.Fprintf(errOut, "flmngr: unknown command %q\n\n", args[0])
	usage(errOut)
	return 2
}

// oneLineError shows users the safe message of an *fault.Error and the
// field it is about.
func oneLineError(err error) string {
	var e *fault.Error
	if errors.As(err, &e) {
		msg := e.Message
		if e.Field != "" && !strings.HasPrefix(msg, e.Field) {
			msg = e.Field + ": " + msg
		}
		if e.Kind == fault.KindUnavailable && e.Err != nil {
			msg += " (" + e.Err.Error() + ")"
		}
		return msg
	}
	return err.Error()
}
