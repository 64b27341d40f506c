package experiments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/agent"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/tasks/fedavg"
)

// Config configures an experiment.
type Config struct {
	// Runs is how many times the experiment is repeated (default 1).
	Runs int
	// Out is the output directory; the deployment keeps its data in
	// Out/data.
	Out string
	// Progress gets a line per run.
	Progress io.Writer
	Logger   *slog.Logger
}

// Conduct runs an experiment on a fresh embedded deployment, writes its
// timeline and figures into cfg.Out and returns them.
func Conduct(ctx context.Context, kind string, cfg Config) ([]Run, []Summary, error) {
	if kind != Exp1 && kind != Exp2 {
		return nil, nil, fmt.Errorf("unknown experiment %q (exp1 or exp2)", kind)
	}
	if cfg.Runs < 1 {
		cfg.Runs = 1
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, nil, err
	}
	c, err := cloud.Open(ctx, cloud.Config{DataDir: filepath.Join(cfg.Out, "data"), Listen: "127.0.0.1:0", Name: kind, Logger: cfg.Logger, Grace: 2 * time.Second, Auth: true})
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	x := &experiment{cloud: c, cfg: cfg, op: api.NewClient(c.Conn(), 30*time.Second).WithSource("operator"), more: make(chan struct{})}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go func() {
		_ = c.Log.Follow(wctx, eventlog.FollowOptions{From: 1}, func(e events.Envelope) error {
			x.mu.Lock()
			x.history = append(x.history, e)
			close(x.more)
			x.more = make(chan struct{})
			x.mu.Unlock()
			return nil
		})
	}()
	if kind == Exp1 {
		err = x.exp1(ctx)
	} else {
		err = x.exp2(ctx)
	}
	if err != nil {
		return nil, nil, err
	}
	var all []events.Envelope
	if _, err := c.Log.Replay(ctx, eventlog.FollowOptions{From: 1}, func(e events.Envelope) error { all = append(all, e); return nil }); err != nil {
		return nil, nil, err
	}
	if err := WriteTimeline(filepath.Join(cfg.Out, TimelineFile), all); err != nil {
		return nil, nil, err
	}
	return WriteResults(cfg.Out, kind, all)
}

type experiment struct {
	cloud *cloud.Cloud
	cfg   Config
	op    *api.Client

	mu      sync.Mutex
	history []events.Envelope // every event, as the log delivers them
	more    chan struct{}     // closed when history grows
	from    int               // where the current run's events begin
}

// beginRun makes await look only at events from now on.
func (x *experiment) beginRun() {
	x.mu.Lock()
	x.from = len(x.history)
	x.mu.Unlock()
}

// await waits until the current run has an event matching each
// predicate, in any order.
func (x *experiment) await(ctx context.Context, what string, matches ...func(events.Envelope) bool) error {
	timeout := time.NewTimer(2 * time.Minute)
	defer timeout.Stop()
	for {
		x.mu.Lock()
		left := 0
		for _, m := range matches {
			if !slices.ContainsFunc(x.history[x.from:], m) {
				left++
			}
		}
		more := x.more
		x.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-more:
		case <-timeout.C:
			return fmt.Errorf("timed out waiting for %s", what)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func ofType(typ, agg string) func(events.Envelope) bool {
	return func(e events.Envelope) bool { return e.Type == typ && e.Aggregate.ID == agg }
}

func clientEvent(typ, client, task string) func(events.Envelope) bool {
	m := clientTask(client, task, "")
	return func(e events.Envelope) bool { return e.Type == typ && m(e) }
}

// createFedAvg registers a FedAvg task of one round with two clients and
// uploads its files.
func (x *experiment) createFedAvg(ctx context.Context, id, clientArgs string) error {
	cfg := fedavg.DefaultConfig()
	cfg.Rounds, cfg.MinClients, cfg.Partitions, cfg.Trigger = 1, 2, 2, fedavg.NotifyTrigger
	_, err := x.cloud.RegisterFedAvg(ctx, x.op, cloud.FedAvgTask{ID: id, Host: "127.0.0.1", Criterion: `"camera" in sensors`,
		ClientArguments: clientArgs, Tags: []string{"experiment"}, Config: cfg})
	return err
}

// startAgent runs a client agent with its own connection until stop.
func (x *experiment) startAgent(ctx context.Context, id string) (stop func(), err error) {
	opts, err := x.cloud.ClientOptions(ctx, id)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(x.cloud.ClientURL(), opts...)
	if err != nil {
		return nil, err
	}
	camera := []string{"camera"}
	a, err := agent.New(nc, agent.Config{ClientID: id, Info: commands.ClientInfo{Sensors: &camera, DataQnt: new(int64(30000))},
		WorkDir: filepath.Join(x.cfg.Out, "clients", id), Grace: 2 * time.Second, Logger: x.cfg.Logger})
	if err != nil {
		nc.Close()
		return nil, err
	}
	actx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.Run(actx); err != nil {
			x.cfg.Logger.Error("agent stopped", "client_id", id, "err", err)
		}
	})
	return func() { cancel(); wg.Wait(); nc.Close() }, nil
}

// exp1: the cloud is up; the operator creates and starts a task; the
// clients come up, register, are offered it, download it, run and finish.
func (x *experiment) exp1(ctx context.Context) error {
	for n := 1; n <= x.cfg.Runs; n++ {
		start := time.Now()
		x.beginRun()
		task := exp1Task(n)
		if err := x.createFedAvg(ctx, task, ""); err != nil {
			return err
		}
		if _, err := x.op.StartTask(ctx, commands.StartTask{TaskID: task}); err != nil {
			return err
		}
		if err := x.await(ctx, "the server of "+task, ofType(events.TaskServerStartedV1, task)); err != nil {
			return err
		}
		var stops []func()
		for _, id := range []string{task + "-c1", task + "-c2"} {
			stop, err := x.startAgent(ctx, id)
			if err != nil {
				return err
			}
			stops = append(stops, stop)
		}
		err := x.await(ctx, task+" to finish", ofType(events.TaskFinishedV1, task),
			clientEvent(events.ClientTaskExitedV1, task+"-c1", task), clientEvent(events.ClientTaskExitedV1, task+"-c2", task))
		for _, stop := range stops {
			stop()
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(x.cfg.Progress, "exp1 run %d/%d done in %s\n", n, x.cfg.Runs, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// exp2: tasks E (whose client fails: test-error) and C run; a client
// starts E, E errors, the client quarantines it and fails over to C.
func (x *experiment) exp2(ctx context.Context) error {
	if err := x.createFedAvg(ctx, exp2E, "test-error"); err != nil {
		return err
	}
	if err := x.createFedAvg(ctx, exp2C, ""); err != nil {
		return err
	}
	for n := 1; n <= x.cfg.Runs; n++ {
		start := time.Now()
		x.beginRun()
		for _, id := range []string{exp2E, exp2C} {
			if _, err := x.op.StartTask(ctx, commands.StartTask{TaskID: id}); err != nil {
				return err
			}
		}
		if err := x.await(ctx, "the servers of E and C", ofType(events.TaskServerStartedV1, exp2E), ofType(events.TaskServerStartedV1, exp2C)); err != nil {
			return err
		}
		stop, err := x.startAgent(ctx, exp2Client)
		if err != nil {
			return err
		}
		run := strconv.Itoa(n)
		running := func(e events.Envelope) bool {
			p, ok := e.Event.(*events.ClientTaskRunning)
			return ok && p.TaskID == exp2C && p.Run == run
		}
		err = x.await(ctx, "the client to fail over to C", running)
		if err == nil {
			for _, id := range []string{exp2E, exp2C} {
				if _, serr := x.op.StopTask(ctx, id); serr != nil && !errors.Is(serr, context.Canceled) {
					err = serr
				}
			}
		}
		if err == nil {
			err = x.await(ctx, "E and C to stop", ofType(events.TaskStoppedV1, exp2E), ofType(events.TaskStoppedV1, exp2C),
				clientEvent(events.ClientTaskExitedV1, exp2Client, exp2C), clientEvent(events.ClientTaskExitedV1, exp2Client, exp2E))
		}
		stop()
		if err != nil {
			return err
		}
		fmt.Fprintf(x.cfg.Progress, "exp2 run %d/%d done in %s\n", n, x.cfg.Runs, time.Since(start).Round(time.Millisecond))
	}
	return nil
}
