package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/agent"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/tasks/fedavg"
)

// demoTask is the id of the task the demo runs.
const demoTask = "fedavg"

func runDemo(args []string, out io.Writer) error {
	fs := newFlags("demo", "demo [--clients N] [--exit] [flags]",
		"The main job: starts the embedded deployment with local client agents,\n"+
			"registers the FedAvg task (MNIST, federated averaging) with a selection\n"+
			"criterion, uploads its files, starts it, shows each round's accuracy and,\n"+
			"when it finishes, prints the task's timeline with step latencies. The\n"+
			"deployment then stays up for the CLI until Ctrl-C (or exits with --exit).")
	var sf serveFlags
	sf.register(fs)
	sf.registerEmbedded(fs)
	listen := registerListen(fs)
	clients := fs.Int("clients", 2, "local client agents to run (site-1, site-2, ...)")
	exit := fs.Bool("exit", false, "exit once the task ended instead of staying up")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *clients < 1 {
		return fmt.Errorf("%w: --clients must be at least 1", errUsage)
	}
	if !setFlags(fs)["log-level"] {
		sf.logLevel = "warn" // the demo prints its own progress
	}
	ctx, stop := interrupted()
	defer stop()
	start := time.Now()
	c, logger, err := openCloud(ctx, sf, cloud.Config{Listen: *listen})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(out, "flmngr %s is up: NATS %s, data %s\n", version, c.ClientURL(), c.DataDir())
	printGateway(out, c)

	// The agents stop first and deliver what they have to report while
	// their connections and the cloud are still there.
	var wg sync.WaitGroup
	agentsCtx, stopAgents := context.WithCancel(ctx)
	defer func() { stopAgents(); wg.Wait() }()
	camera := []string{"camera"}
	for i := 1; i <= *clients; i++ {
		id := fmt.Sprintf("site-%d", i)
		nc, err := c.ConnectClient(ctx, id)
		if err != nil {
			return err
		}
		a, err := agent.New(nc, agent.Config{ClientID: id, Info: commands.ClientInfo{Sensors: &camera, DataQnt: new(int64(30000))},
			WorkDir: filepath.Join(c.DataDir(), "clients", id), Logger: logger.With("component", "agent", "client_id", id)})
		if err != nil {
			return err
		}
		wg.Go(func() {
			if err := a.Run(agentsCtx); err != nil {
				logger.Error("agent stopped", "client_id", id, "err", err)
			}
			if n := a.Pending(); n > 0 {
				fmt.Fprintf(out, "%s: %d reports not delivered at shutdown; kept in %s\n", id, n, a.JournalPlace())
			}
		})
	}
	fmt.Fprintf(out, "%d client agents up (site-1 … site-%d, sensors camera)\n", *clients, *clients)

	cl := api.NewClient(c.Conn(), 30*time.Second).WithSource("demo")
	rounds, err := prepareDemoTask(ctx, c, cl, *clients, out)
	if err != nil {
		return err
	}
	if err := waitClients(ctx, cl, *clients); err != nil {
		return err
	}
	r, err := cl.StartTask(ctx, commands.StartTask{TaskID: demoTask})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "task %s started (event %d); MNIST loads on the server and on each client…\n\n", demoTask, r.Seq)
	final, ended, err := followDemo(ctx, c.Log, r.Seq, rounds, *clients, out)
	if err != nil {
		return err
	}
	page, err := cl.Timeline(ctx, api.TimelineRequest{TimelineQuery: projections.TimelineQuery{Task: demoTask, After: r.Seq - 1, Limit: 1000}})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTimeline of the run (step = time since the previous event):\n")
	printTimeline(out, page.Entries)
	if ended != events.TaskFinishedV1 {
		return fmt.Errorf("task %s ended with %s", demoTask, ended)
	}
	fmt.Fprintf(out, "\nFinal accuracy on the MNIST test set: %.4f (%d rounds, %d clients, %.1f s from start-up)\n", final, rounds, *clients, time.Since(start).Seconds())
	if *exit {
		return nil
	}
	fmt.Fprintf(out, "\nflmngr stays up for you to explore, e.g.:\n  bin/flmngr task get %s\n  bin/flmngr timeline %s\n  bin/flmngr user list\n  bin/flmngr task start %s   # run it again\nStop with Ctrl-C.\n", demoTask, demoTask, demoTask)
	select {
	case <-ctx.Done():
	case err := <-c.Errors():
		return err
	}
	return nil
}

// prepareDemoTask registers (or refreshes) the FedAvg task on a free port
// with its files; it returns the number of rounds.
func prepareDemoTask(ctx context.Context, c *cloud.Cloud, cl *api.Client, clients int, out io.Writer) (int, error) {
	cfg := fedavg.DefaultConfig()
	cfg.MinClients, cfg.Partitions, cfg.Trigger = clients, clients, fedavg.NotifyTrigger
	crit := `"camera" in sensors && data_qnt > 0`
	port, err := c.RegisterFedAvg(ctx, cl, cloud.FedAvgTask{ID: demoTask, Host: "127.0.0.1", Criterion: crit,
		Tags: []string{"mnist", "fedavg", "demo"}, Config: cfg})
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(out, "task %s registered: criterion %s, server on 127.0.0.1:%d, files %s and %s\n", demoTask, crit, port, fedavg.ConfigFile, fedavg.NotifyTrigger)
	return cfg.Rounds, nil
}

// waitClients waits until the local agents registered, so that the start
// reaches them all at once.
func waitClients(ctx context.Context, cl *api.Client, n int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		if s, err := cl.Status(ctx); err == nil && s.Clients >= n {
			return nil
		}
		select {
		case <-tick.C:
		case <-deadline:
			return errors.New("the client agents did not register within 30s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// followDemo prints the run's progress from the log until the task ended
// and every client that started it said how it ended there (or 10 s
// passed since the task ended); it returns the last accuracy and the
// event that ended the run.
func followDemo(ctx context.Context, log *eventlog.Log, from uint64, rounds, clients int, out io.Writer) (float64, string, error) {
	var acc float64
	var ended string
	started, settled := map[string]bool{}, map[string]bool{}
	errDone := errors.New("done")
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	err := log.Follow(fctx, eventlog.FollowOptions{From: from}, func(e events.Envelope) error {
		switch p := e.Event.(type) {
		case *events.TaskServerStarted:
			fmt.Fprintf(out, "  server started (pid %d)\n", p.PID)
		case *events.ClientTaskStarted:
			if p.TaskID == demoTask {
				started[e.Aggregate.ID] = true
				fmt.Fprintf(out, "  %s started its client (pid %d)\n", e.Aggregate.ID, p.PID)
			}
		case *events.TaskRoundCompleted:
			acc = p.Metrics["accuracy"]
			fmt.Fprintf(out, "  round %d/%d  accuracy %.4f  loss %.4f  %s\n", p.Round, rounds, acc, p.Metrics["loss"], bar(acc))
		case *events.TaskTriggerRan:
			fmt.Fprintf(out, "  trigger %s ran (exit %d)\n", p.Name, p.Code)
		case *events.ClientTaskFinished:
			if p.TaskID == demoTask {
				settled[e.Aggregate.ID] = true
				fmt.Fprintf(out, "  %s finished\n", e.Aggregate.ID)
			}
		case *events.ClientTaskErrored:
			if p.TaskID == demoTask {
				settled[e.Aggregate.ID] = true
				fmt.Fprintf(out, "  %s errored: %s\n", e.Aggregate.ID, p.Exception)
			}
		case *events.ClientTaskStopped, *events.ClientTaskInterrupted:
			if taskOf(p) == demoTask {
				settled[e.Aggregate.ID] = true
				fmt.Fprintf(out, "  %s stopped its client\n", e.Aggregate.ID)
			}
		case *events.TaskFinished, *events.TaskErrored, *events.TaskStopped, *events.TaskInterrupted:
			if e.Aggregate.ID == demoTask && ended == "" {
				ended = e.Type
				// The clients' last reports follow the task's end; they
				// are waited for, but not for ever.
				timer = time.AfterFunc(10*time.Second, cancel)
				if p, ok := p.(*events.TaskErrored); ok {
					fmt.Fprintf(out, "  task errored: %s\n", p.Exception)
				}
			}
		}
		if ended == "" {
			return nil
		}
		all := len(settled) >= len(started) && len(started) >= min(clients, 1)
		for id := range started {
			all = all && settled[id]
		}
		if all {
			return errDone
		}
		return nil
	})
	if errors.Is(err, errDone) || (ended != "" && ctx.Err() == nil) {
		return acc, ended, nil
	}
	return acc, ended, err
}

// taskOf is the task a client's stop or interruption is about.
func taskOf(p events.Payload) string {
	switch p := p.(type) {
	case *events.ClientTaskStopped:
		return p.TaskID
	case *events.ClientTaskInterrupted:
		return p.TaskID
	}
	return ""
}

// bar draws a fraction as 30 cells.
func bar(f float64) string {
	n := int(f*30 + 0.5)
	n = max(0, min(30, n))
	return "[" + strings.Repeat("█", n) + strings.Repeat("·", 30-n) + "] " + strconv.Itoa(int(f*100+0.5)) + "%"
}
