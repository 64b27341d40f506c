package supervisor

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/files"
	"github.com/flmngr/flmngr/services/launch"
	"github.com/flmngr/flmngr/taskd"
)

// Executor runs commands.
type Executor interface {
	Execute(ctx context.Context, cmd commands.Command) (commands.Result, error)
}

// Config configures a supervisor.
type Config struct {
	// Name identifies this supervisor in events; a restarted supervisor
	// with the same name takes over what its predecessor left.
	Name string
	// WorkDir is the manager's work directory: task files go to
	// <WorkDir>/tasks/task_<id>.
	WorkDir string
	// Grace is how long a stopped server may take before SIGKILL
	// (default 5s); also how long a server that reported "Finished" may
	// take to exit by itself.
	Grace time.Duration
	// TriggerTimeout bounds a trigger (default 5m).
	TriggerTimeout time.Duration
	// Output, when set, gets every line a server or trigger prints.
	Output func(task, run string, m taskd.Message)
	// OnSpawn and OnExit, when set, count server processes.
	OnSpawn func()
	OnExit  func(outcome string)
	Logger  *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Grace = cmp.Or(c.Grace, 5*time.Second)
	c.TriggerTimeout = cmp.Or(c.TriggerTimeout, 5*time.Minute)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Output == nil {
		c.Output = func(string, string, taskd.Message) {}
	}
	if c.OnSpawn == nil {
		c.OnSpawn = func() {}
	}
	if c.OnExit == nil {
		c.OnExit = func(string) {}
	}
	return c
}

// process is what the supervisor needs of a process it started: a
// *taskd.Process.
type process interface {
	PID() int
	Done() <-chan struct{}
	Exit() taskd.Exit
	Stop(ctx context.Context) (taskd.Exit, error)
}

// startProcess starts a real process; unit tests replace it.
func startProcess(cfg taskd.Config) (process, error) {
	p, err := taskd.Start(cfg)
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Supervisor runs task servers.
type Supervisor struct {
	log   *eventlog.Log
	cmds  Executor
	files *files.Store
	cfg   Config
	start func(taskd.Config) (process, error)

	mu   sync.Mutex
	runs map[string]*serverRun // by task id
	wg   sync.WaitGroup        // monitors and triggers
	// closed is set, under mu, when the supervisor stops: no run is
	// added after, so nothing is added to wg while shutdown waits on it.
	closed bool
	flush  context.Context // ends the recorders' retries at shutdown
}

// New returns a supervisor; Run runs it.
func New(log *eventlog.Log, cmds Executor, fs *files.Store, cfg Config) *Supervisor {
	return &Supervisor{log: log, cmds: cmds, files: fs, cfg: cfg.withDefaults(), start: startProcess, runs: map[string]*serverRun{}}
}

// stop reasons
const (
	reasonOperator = "stop requested"
	reasonFinished = "finished"
	reasonErrored  = "errored"
	reasonShutdown = "cloud shut down"
	reasonLost     = "another supervisor owns the run"
	reasonExited   = "exited"
)

type serverRun struct {
	task, run string
	proc      process
	rec       *recorder
	triggers  sync.WaitGroup
	once      sync.Once
	mu        sync.Mutex
	reason    string // why it stops; guarded by mu
	stop      chan struct{}
	lost      atomic.Bool // another supervisor owns the run: record nothing
	// A Flower App run's SuperNode keys are kept until stopAdmit.
	stopAdmit context.CancelFunc
	admitted  chan struct{}
}

// stopping reports whether a stop was requested; what the process says
// while it dies does not change the run's outcome.
func (r *serverRun) stopping() bool {
	select {
	case <-r.stop:
		why := r.why()
		return why != reasonFinished && why != reasonErrored
	default:
		return false
	}
}

// why is the reason the run stops ("" while it does not).
func (r *serverRun) why() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason
}

func (r *serverRun) requestStop(reason string) { r.settle(reason) }

// settle stops the run for reason unless a stop was requested already;
// it reports whether this call did.
func (r *serverRun) settle(reason string) bool {
	first := false
	r.once.Do(func() {
		r.mu.Lock()
		r.reason, first = reason, true
		r.mu.Unlock()
		close(r.stop)
	})
	return first
}

// flushFor bounds how long a supervisor that stops keeps recording what
// its servers reported, when the log cannot be reached.
const flushFor = 15 * time.Second

// Run supervises until ctx ends, then stops every server it runs.
func (s *Supervisor) Run(ctx context.Context) error {
	flush, stopFlush := context.WithCancel(context.Background())
	defer stopFlush()
	s.flush = flush
	if err := os.MkdirAll(s.cfg.WorkDir, 0o755); err != nil {
		return fmt.Errorf("supervisor: %w", err)
	}
	// Whatever an earlier life of this supervisor left running (it was
	// killed, say) is ended before anything else: nothing runs twice.
	if err := taskd.EndEarlierLife(s.pidDir(), "supervisor", s.cfg.Logger); err != nil {
		return err
	}
	if err := s.reconcile(ctx); err != nil {
		return err
	}
	from, err := s.log.LastSeq(ctx)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	var loops sync.WaitGroup
	loops.Go(func() {
		err := s.log.Follow(ctx, eventlog.FollowOptions{From: from + 1, Filters: []string{s.log.TypeFilter(events.TaskStopRequestedV1)}},
			func(e events.Envelope) error { return s.onStop(ctx, e) })
		if ctx.Err() == nil {
			errc <- fmt.Errorf("supervisor: stop requests: %w", err)
		}
	})
	loops.Go(func() {
		err := s.log.Durable(ctx, eventlog.DurableOptions{
			Name:    "flmngr-server-supervisor",
			Filters: []string{s.log.TypeFilter(events.TaskStartRequestedV1)},
			OnError: func(err error) { s.cfg.Logger.Warn("start request", "err", err) },
		}, s.onStart)
		if err != nil && ctx.Err() == nil {
			errc <- fmt.Errorf("supervisor: start requests: %w", err)
		}
	})
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	t := time.AfterFunc(flushFor, stopFlush)
	defer t.Stop()
	s.shutdown()
	loops.Wait()
	return runErr
}

// record executes a command, bounded in time even during shutdown.
func (s *Supervisor) record(task string, p events.Payload) error {
	return s.recordCtx(context.Background(), task, p)
}

// recordCtx executes a command within ctx, bounded in time.
func (s *Supervisor) recordCtx(ctx context.Context, task string, p events.Payload) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ctx = commands.WithSource(ctx, "supervisor/"+s.cfg.Name)
	_, err := s.cmds.Execute(ctx, commands.RecordRun{TaskID: task, Event: p})
	if err != nil && fault.KindOf(err) != fault.KindConflict {
		s.cfg.Logger.Warn("record server event", "task_id", task, "type", p.EventType(), "err", err)
	}
	return err
}

// loadTask reads a task's state up to the last event the log's leader
// has; with seq, up to that event at least (the one that made the
// supervisor look). A replica that is behind is read again, never
// believed.
func (s *Supervisor) loadTask(ctx context.Context, id string, seq uint64) (commands.TaskState, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var evs []events.Envelope
	var err error
	if seq > 0 {
		evs, err = s.log.LoadUntil(ctx, events.Task(id), 0, seq)
	} else {
		evs, err = s.log.LoadLatest(ctx, events.Task(id), 0)
	}
	var st commands.TaskState
	for _, e := range evs {
		st.Apply(e)
	}
	return st, err
}

// pidDir holds the pid files of the processes this supervisor runs.
func (s *Supervisor) pidDir() string { return filepath.Join(s.cfg.WorkDir, "run") }

// reconcile records as interrupted the runs this supervisor started before
// it (re)started: their processes died with it.
func (s *Supervisor) reconcile(ctx context.Context) error {
	mine := map[string]string{} // task → run
	err := s.log.Scan(ctx, s.log.TypeFilter(events.TaskServerStartedV1), 1, func(e events.Envelope) error {
		if p := e.Event.(*events.TaskServerStarted); p.Supervisor == s.cfg.Name {
			mine[e.Aggregate.ID] = p.Run
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("supervisor: reconcile: %w", err)
	}
	for task, run := range mine {
		st, err := s.loadTask(ctx, task, 0)
		if err != nil {
			return fmt.Errorf("supervisor: reconcile %s: %w", task, err)
		}
		if st.Run == run && st.Status.Busy() && st.Status != commands.StatusStartRequested {
			s.cfg.Logger.Warn("server of an earlier life is gone", "task_id", task, "run", run)
			_ = s.record(task, &events.TaskInterrupted{Run: run, Reason: "the cloud restarted; its server process is gone"})
		}
	}
	return nil
}

// onStart handles a start request delivered by the durable consumer.
func (s *Supervisor) onStart(ctx context.Context, e events.Envelope) error {
	req := e.Event.(*events.TaskStartRequested)
	task := e.Aggregate.ID
	st, err := s.loadTask(ctx, task, e.Seq)
	if err != nil {
		return err // redelivered, never dropped
	}
	if st.Run != req.Run {
		return nil // a later run superseded this request
	}
	switch st.Status {
	case commands.StatusStartRequested:
	case commands.StatusStopRequested:
		// Stopped before it ever started.
		_ = s.record(task, &events.TaskStopped{Run: req.Run})
		return nil
	default:
		return nil
	}
	s.mu.Lock()
	_, busy := s.runs[task]
	s.mu.Unlock()
	if busy {
		return errors.New("the previous run of this task is still stopping")
	}
	r, argv, err := s.spawn(ctx, task, st, req, e.Seq)
	if errors.Is(err, errShuttingDown) {
		return err
	}
	if err != nil {
		s.cfg.Logger.Warn("cannot start server", "task_id", task, "run", req.Run, "err", err)
		_ = s.record(task, &events.TaskErrored{Run: req.Run, Exception: "cannot start the server: " + err.Error()})
		return nil
	}
	if err := s.record(task, &events.TaskServerStarted{Run: req.Run, PID: r.proc.PID(), Supervisor: s.cfg.Name, Command: argv}); err != nil {
		// A stop came first, or another replica started this run.
		reason := reasonLost
		if st, lerr := s.loadTask(ctx, task, 0); lerr == nil && st.Run == req.Run && st.Status == commands.StatusStopRequested {
			reason = reasonOperator
		}
		if reason == reasonLost {
			r.lost.Store(true)
		}
		go r.rec.run()
		r.requestStop(reason)
		return nil
	}
	// What the server reported meanwhile is recorded from now on, after
	// the start.
	go r.rec.run()
	s.cfg.Logger.Info("server started", "task_id", task, "run", req.Run, "pid", r.proc.PID())
	return nil
}

func (s *Supervisor) spawn(ctx context.Context, task string, st commands.TaskState, req *events.TaskStartRequested, seq uint64) (*serverRun, []string, error) {
	dir := launch.TaskDir(s.cfg.WorkDir, task)
	if err := s.files.Materialize(ctx, task, st.Files, dir); err != nil {
		return nil, nil, fmt.Errorf("task files: %w", err)
	}
	flower := st.Spec.Kind == commands.KindFlowerApp
	if flower {
		if err := s.flowerTLS(ctx, task, st, req.Run); err != nil {
			return nil, nil, fmt.Errorf("the SuperLink's TLS certificate: %w", err)
		}
	}
	args := st.Spec.ServerArguments
	if req.Arguments != nil {
		args = *req.Arguments
	}
	vars := map[string]string{"task": task, "run": req.Run, "host": st.Spec.Host, "port": strconv.Itoa(st.Spec.Port)}
	argv, err := launch.Argv(launch.Spec{Entry: commands.ServerEntryPoint, Command: st.Spec.ServerCommand, Arguments: args, WorkDir: s.cfg.WorkDir, TaskDir: dir, Vars: vars})
	if err != nil {
		return nil, nil, err
	}
	grace := s.cfg.Grace
	if flower {
		grace = max(grace, commands.FlowerAppStopGrace)
	}
	r := &serverRun{task: task, run: req.Run, stop: make(chan struct{})}
	r.rec = newRecorder(s.flush, func(ctx context.Context, p events.Payload) error {
		if r.lost.Load() {
			return nil
		}
		return s.recordCtx(ctx, task, p)
	})
	r.proc, err = s.start(taskd.Config{
		Argv: argv, Dir: dir, Env: launch.Env(vars), Grace: grace,
		PIDFile:   filepath.Join(s.pidDir(), "task_"+task+".pid"),
		OnMessage: func(m taskd.Message) { s.onMessage(r, m) },
	})
	if err != nil {
		return nil, nil, err
	}
	s.cfg.OnSpawn()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		// The supervisor stopped while this server started: it ends
		// here, and the start is left to whoever supervises next.
		_, _ = r.proc.Stop(context.Background())
		return nil, nil, errShuttingDown
	}
	s.runs[task] = r
	if flower {
		// The SuperNodes the SuperLink admits, until the run ends.
		actx, stop := context.WithCancel(context.Background())
		r.admitted = make(chan struct{})
		r.stopAdmit = stop
		s.wg.Go(func() { defer close(r.admitted); s.admitSuperNodes(actx, task, req.Run, seq) })
	}
	s.wg.Go(func() { s.monitor(r) })
	return r, argv, nil
}

// errShuttingDown refuses a start that came as the supervisor stopped; it
// is not acknowledged, so the start is delivered again.
var errShuttingDown = errors.New("the supervisor is stopping")

// onMessage turns what a server reports into events. It never waits for
// the log: the events queue in the run's recorder.
func (s *Supervisor) onMessage(r *serverRun, m taskd.Message) {
	s.cfg.Output(r.task, r.run, m)
	switch {
	case m.Kind == taskd.KindModel:
		r.rec.add(&events.TaskRoundCompleted{Run: r.run, Round: m.Round, Metrics: m.Metrics, Raw: m.Raw})
	case m.Kind == taskd.KindStep:
		r.rec.add(&events.TaskStepReported{Run: r.run, Step: m.Step, Detail: m.Text})
	case m.Kind == taskd.KindTrigger:
		r.rec.add(&events.TaskTriggerFired{Run: r.run, Name: m.Trigger, Arguments: m.Arguments})
		r.triggers.Add(1)
		s.wg.Go(func() { defer r.triggers.Done(); s.runTrigger(r, m.Trigger, m.Arguments) })
	case m.Kind == taskd.KindError && r.stopping():
		s.cfg.Logger.Info("error line while stopping", "task_id", r.task, "run", r.run, "exception", m.Text)
	case m.Kind == taskd.KindError:
		if r.settle(reasonErrored) {
			r.rec.add(&events.TaskErrored{Run: r.run, Exception: m.Text})
		}
	case m.IsFinished():
		if r.settle(reasonFinished) {
			r.rec.add(&events.TaskFinished{Run: r.run})
		}
	}
}

// monitor waits for the server to end or be stopped and records how.
func (s *Supervisor) monitor(r *serverRun) {
	defer func() {
		s.mu.Lock()
		if s.runs[r.task] == r {
			delete(s.runs, r.task)
		}
		s.mu.Unlock()
	}()
	select {
	case <-r.proc.Done():
	case <-r.stop:
		if r.why() == reasonFinished {
			// Give a server that said "Finished" the grace period to
			// exit by itself.
			select {
			case <-r.proc.Done():
			case <-time.After(s.cfg.Grace):
			}
		}
		if _, err := r.proc.Stop(context.Background()); err != nil {
			s.cfg.Logger.Error("server would not stop", "task_id", r.task, "run", r.run, "pid", r.proc.PID(), "err", err)
		}
	}
	if r.stopAdmit != nil {
		r.stopAdmit()
		<-r.admitted
	}
	ex := r.proc.Exit()
	// A stop asked for from now on comes too late to change the outcome.
	r.settle(reasonExited)
	why := r.why()
	s.cfg.OnExit(string(ex.Outcome))
	status := events.ExitStatus{Code: ex.Code, Signal: ex.Signal, Duration: ex.Duration, LastLogs: ex.LastLogs}
	// A trigger's result belongs to the run: wait for it (they are bounded).
	r.triggers.Wait()
	r.rec.add(&events.TaskServerExited{Run: r.run, ExitStatus: status})
	// The outcome is what the process printed, all of it read by now, not
	// what was recorded in time.
	switch {
	case why == reasonLost:
	case why == reasonOperator:
		r.rec.add(&events.TaskStopped{Run: r.run})
	case why == reasonShutdown:
		r.rec.add(&events.TaskInterrupted{Run: r.run, Reason: reasonShutdown})
	case ex.Outcome == taskd.OutcomeUnreported:
		r.rec.add(&events.TaskErrored{Run: r.run, Exit: &status,
			Exception: fmt.Sprintf("the server exited without reporting Finished or an error (%s)", exitText(ex))})
	}
	r.rec.close()
	<-r.rec.done
	s.cfg.Logger.Info("server ended", "task_id", r.task, "run", r.run, "outcome", ex.Outcome, "code", ex.Code, "reason", why)
}

func exitText(ex taskd.Exit) string {
	if ex.Signal != "" {
		return "signal " + ex.Signal
	}
	return "exit code " + strconv.Itoa(ex.Code)
}

// onStop handles a stop request: the supervisor running that run stops
// it. A supervisor that started the run but runs no process of it any
// more (it was lost without its exit being recorded) records the run
// stopped, saying why, rather than leave it stopping for ever.
func (s *Supervisor) onStop(ctx context.Context, e events.Envelope) error {
	req := e.Event.(*events.TaskStopRequested)
	task := e.Aggregate.ID
	s.mu.Lock()
	r, ok := s.runs[task]
	s.mu.Unlock()
	if ok && r.run == req.Run {
		r.requestStop(reasonOperator)
		return nil
	}
	st, err := s.loadTask(ctx, task, e.Seq)
	if err != nil {
		s.cfg.Logger.Warn("stop request: cannot read the task", "task_id", task, "err", err)
		return nil
	}
	if st.Run == req.Run && st.Status == commands.StatusStopRequested && st.ServerBy == s.cfg.Name {
		s.mu.Lock()
		_, running := s.runs[task]
		s.mu.Unlock()
		if !running {
			s.cfg.Logger.Warn("stop of a run whose server is gone", "task_id", task, "run", req.Run)
			_ = s.record(task, &events.TaskStopped{Run: req.Run, Reason: "its server process was no longer running"})
		}
	}
	return nil
}

// shutdown stops every server and waits for their monitors and triggers.
func (s *Supervisor) shutdown() {
	s.mu.Lock()
	s.closed = true
	for _, r := range s.runs {
		r.requestStop(reasonShutdown)
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// runTrigger runs the task's trigger program with its arguments as ONE
// argument: the task file <name> itself (a script with a #! line or a
// binary), or <name>.py with python3. A missing trigger is recorded, never
// fatal.
func (s *Supervisor) runTrigger(r *serverRun, name, args string) {
	dir := launch.TaskDir(s.cfg.WorkDir, r.task)
	ran := &events.TaskTriggerRan{Run: r.run, Name: name, Code: -1}
	argv, err := triggerArgv(dir, name, args)
	if err != nil {
		ran.Error = err.Error()
		s.cfg.Logger.Warn("trigger not run", "task_id", r.task, "trigger", name, "err", err)
		r.rec.add(ran)
		return
	}
	p, err := s.start(taskd.Config{Argv: argv, Dir: dir, Env: launch.Env(map[string]string{"task": r.task, "run": r.run}),
		PIDFile:   filepath.Join(s.pidDir(), "trigger_"+r.task+".pid"),
		OnMessage: func(m taskd.Message) { s.cfg.Output(r.task, r.run, m) }})
	if err != nil {
		ran.Error = err.Error()
		r.rec.add(ran)
		return
	}
	select {
	case <-p.Done():
	case <-time.After(s.cfg.TriggerTimeout):
		ran.Error = "timed out after " + s.cfg.TriggerTimeout.String()
		_, _ = p.Stop(context.Background())
	}
	ex := p.Exit()
	ran.Code = ex.Code
	if ran.Error == "" && ex.Code != 0 {
		ran.Error = exitText(ex)
	}
	r.rec.add(ran)
}

func triggerArgv(dir, name, args string) ([]string, error) {
	if err := commands.ValidateFileName("trigger_name", name); err != nil || filepath.Base(name) != name {
		return nil, fmt.Errorf("trigger name %q is not a file name in the task directory", name)
	}
	if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
		return []string{filepath.Join(dir, name), args}, nil
	}
	if fi, err := os.Stat(filepath.Join(dir, name+".py")); err == nil && fi.Mode().IsRegular() {
		py, err := launch.Python()
		if err != nil {
			return nil, err
		}
		return []string{py, name + ".py", args}, nil
	}
	return nil, fmt.Errorf("trigger %s not found in the task's files (%s or %s.py)", name, name, name)
}
