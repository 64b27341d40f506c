package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/experiments"
)

const experimentUsage = `Usage: flmngr experiment <exp1|exp2|report> [flags]

  exp1 [--runs N] [--out DIR]   the original's experiment 1: create and start a
                                task, clients come up, download, run, finish
  exp2 [--runs N] [--out DIR]   the original's experiment 2: a client runs task E,
                                E errors, the client fails over to task C at once
  report --from DIR             recompute every figure from a recorded timeline
  report --stream [--data DIR | --nats URL]
                                recompute them from a deployment's event stream

Each run writes into its output directory (default: under the user's cache
directory, outside any source tree) the native timeline (timeline.ndjson),
events.json in the original's shape (all runs, and one per run under runs/),
the original's raw-times report (raw_times.txt), mean ± 95% CI per step
(summary.txt, summary.json), a chart of the median run (timeline.png) and
p50/p90/p99 of every hop of the path to a client process (hops.txt):
experiment 1 from what caused the offer to the process's first line,
experiment 2 from the client's error to the next task's first line.`

func runExperiment(args []string, out io.Writer) error {
	run := func(kind string) subcommand {
		return subcommand{kind, func(args []string, out io.Writer) error { return conduct(kind, args, out) }}
	}
	return subcommands(args, out, experimentUsage, "experiment", run(experiments.Exp1), run(experiments.Exp2), subcommand{"report", experimentReport})
}

func conduct(kind string, args []string, out io.Writer) error {
	fs := newFlags("experiment "+kind, "experiment "+kind+" [--runs N] [--out DIR]", "Runs the original's "+kind+" on a fresh embedded deployment, N times, and writes\nits timeline and figures (see 'flmngr experiment --help').")
	runs := fs.Int("runs", 1, "how many runs")
	outDir := fs.String("out", "", "output directory (default: <cache>/flmngr/experiments/"+kind+"-<time>)")
	logLevel := fs.String("log-level", "warn", "log level")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *runs < 1 {
		return fmt.Errorf("%w: --runs must be at least 1", errUsage)
	}
	logger, err := (&serveFlags{logLevel: *logLevel}).logger()
	if err != nil {
		return err
	}
	if *outDir == "" {
		*outDir = cacheDir("experiments", kind+"-"+time.Now().Format("20060102-150405"))
	}
	ctx, stop := interrupted()
	defer stop()
	start := time.Now()
	fmt.Fprintf(out, "%s: %d run(s), output in %s\n", kind, *runs, *outDir)
	_, sums, err := experiments.Conduct(ctx, kind, experiments.Config{Runs: *runs, Out: *outDir, Progress: out, Logger: logger})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\n")
	experiments.FormatSummary(out, kind, sums)
	fmt.Fprintln(out)
	if err := printHops(out, *outDir); err != nil {
		return err
	}
	fmt.Fprintf(out, "\n%d run(s) in %s; figures in %s\n", *runs, time.Since(start).Round(time.Millisecond), *outDir)
	return nil
}

func experimentReport(args []string, out io.Writer) error {
	fs := newFlags("experiment report", "experiment report --from DIR | --stream [--data DIR | --nats URL]", "Recomputes every figure of experiments 1 and 2 from a recorded timeline,\noffline: the timings are a projection of the log.")
	from := fs.String("from", "", "an experiment's output directory (its timeline.ndjson)")
	stream := fs.Bool("stream", false, "read the events from a deployment's stream instead")
	data := fs.String("data", "", "with --stream: the data directory of a stopped deployment")
	url := fs.String("nats", "", "with --stream: the NATS URL of a running deployment")
	write := fs.String("write", "", "also write the figures (events.json, raw times, summary, hops, chart) into this directory")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	var evs []events.Envelope
	var err error
	switch {
	case *from != "" && !*stream:
		evs, err = experiments.ReadTimeline(filepath.Join(*from, experiments.TimelineFile))
	case *stream && *from == "":
		evs, err = readStream(*data, *url)
	default:
		return fmt.Errorf("%w: give either --from DIR or --stream", errUsage)
	}
	if err != nil {
		return err
	}
	reported := 0
	for _, kind := range []string{experiments.Exp1, experiments.Exp2} {
		runs := experiments.Runs(kind, evs)
		if len(runs) == 0 {
			continue
		}
		reported++
		experiments.FormatRaw(out, kind, runs)
		fmt.Fprintln(out)
		experiments.FormatSummary(out, kind, experiments.Summarize(kind, runs))
		fmt.Fprintln(out)
		path, hops := experiments.HopRuns(kind, evs)
		experiments.FormatHops(out, path, experiments.HopPercentiles(path, hops))
		fmt.Fprintln(out)
		if *write != "" {
			if _, _, err := experiments.WriteResults(*write, kind, evs); err != nil {
				return err
			}
		}
	}
	if reported == 0 {
		return fmt.Errorf("no run of exp1 or exp2 in these %d events", len(evs))
	}
	return nil
}

// readStream reads every event of a deployment: a running one by URL, or
// a stopped one's data directory through an in-process server.
func readStream(data, url string) ([]events.Envelope, error) {
	var nc *nats.Conn
	var err error
	switch {
	case url != "":
		nc, err = nats.Connect(url)
	case data != "":
		ns, serr := eventlog.StartEmbedded(eventlog.EmbeddedConfig{Dir: data, Listen: "-"})
		if serr != nil {
			return nil, serr
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		nc, err = nats.Connect("", nats.InProcessServer(ns))
	default:
		url = os.Getenv("FLMNGR_NATS")
		url = cmp.Or(url, defaultNATS)
		nc, err = nats.Connect(url)
	}
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	ctx := context.Background()
	log, err := eventlog.Attach(ctx, nc, eventlog.Config{})
	if err != nil {
		return nil, fmt.Errorf("%v (is %s a deployment?)", err, strings.TrimSpace(data+" "+url))
	}
	var evs []events.Envelope
	_, err = log.Replay(ctx, eventlog.FollowOptions{From: 1}, func(e events.Envelope) error { evs = append(evs, e); return nil })
	return evs, err
}

// printHops prints the hops an experiment wrote into dir.
func printHops(out io.Writer, dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, experiments.HopsFile))
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}
