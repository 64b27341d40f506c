package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/services/files"
	"github.com/flmngr/flmngr/services/launch"
	"github.com/flmngr/flmngr/services/testkit"
	"github.com/flmngr/flmngr/taskd"
)

// These tests hold the supervisor's reactions to what its processes do.
// The OS process layer is replaced by fakeProc, driven by the test; the
// log, the command handler and the file store are real. The tests that
// run real server processes are in features/ and cmd/flmngr.

// fakeProc stands for a started process: the test makes it report lines
// and exit; Stop ends it as a signal would.
type fakeProc struct {
	cfg  taskd.Config
	pid  int
	done chan struct{}
	// lines is held for reading while lines are handed over: as with
	// taskd, the exit is known only once every line printed before it was
	// read, and a process that ended prints nothing more.
	lines sync.RWMutex

	mu       sync.Mutex
	finished bool
	errText  string
	stops    int
	exit     taskd.Exit
	ended    bool
	// stopHook, when set, is what the process prints when it is stopped.
	stopHook func()
}

func (p *fakeProc) PID() int              { return p.pid }
func (p *fakeProc) Done() <-chan struct{} { return p.done }

func (p *fakeProc) Exit() taskd.Exit {
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exit
}

// Stop ends the process as its stop signal would; like taskd's, a Stop
// of a process that has exited already signals nothing.
func (p *fakeProc) Stop(context.Context) (taskd.Exit, error) {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return p.Exit(), nil
	}
	p.stops++
	hook := p.stopHook
	p.mu.Unlock()
	if hook != nil {
		hook()
	}
	p.end(-1, "terminated", true)
	return p.Exit(), nil
}

// stopCalls counts the stops of the process while it ran.
func (p *fakeProc) stopCalls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stops
}

// say hands the supervisor lines the process printed, one after the
// other, before it can end.
func (p *fakeProc) say(ms ...taskd.Message) {
	p.lines.RLock()
	defer p.lines.RUnlock()
	for _, m := range ms {
		p.mu.Lock()
		if p.ended {
			p.mu.Unlock()
			return
		}
		switch {
		case m.IsFinished():
			p.finished = true
		case m.Kind == taskd.KindError && p.errText == "":
			p.errText = m.Text
		}
		p.mu.Unlock()
		p.cfg.OnMessage(m)
	}
}

// onStop sets what the process prints when it is stopped.
func (p *fakeProc) onStop(hook func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopHook = hook
}

// end ends the process once, with taskd's rules for its outcome.
func (p *fakeProc) end(code int, signal string, stopped bool) {
	p.lines.Lock()
	defer p.lines.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return
	}
	p.ended = true
	ex := taskd.Exit{Code: code, Signal: signal, Duration: time.Millisecond}
	switch {
	case p.errText != "":
		ex.Outcome, ex.Exception = taskd.OutcomeErrored, p.errText
	case p.finished:
		ex.Outcome = taskd.OutcomeFinished
	case stopped:
		ex.Outcome = taskd.OutcomeStopped
	default:
		ex.Outcome = taskd.OutcomeUnreported
	}
	p.exit = ex
	close(p.done)
}

// runner starts fake processes and hands them to the test.
type runner struct {
	mu    sync.Mutex
	pid   int
	fail  error
	procs chan *fakeProc
	argv  [][]string
}

func (r *runner) start(cfg taskd.Config) (process, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return nil, r.fail
	}
	r.pid++
	p := &fakeProc{cfg: cfg, pid: 1000 + r.pid, done: make(chan struct{})}
	r.argv = append(r.argv, cfg.Argv)
	r.procs <- p
	return p, nil
}

type rig struct {
	t      *testing.T
	log    *eventlog.Log
	cmds   *commands.Handler
	run    *runner
	work   string
	sup    *Supervisor
	cancel context.CancelFunc
	ended  chan error
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ns := jstest.Server(t, "")
	nc := jstest.Connect(t, ns)
	log := jstest.Open(t, nc)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := files.Open(context.Background(), js, 1, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, log: log, cmds: commands.NewHandler(log, commands.Config{}), run: &runner{procs: make(chan *fakeProc, 16)}, work: t.TempDir()}
	r.sup = New(log, r.cmds, fs, Config{Name: "sup-1", WorkDir: r.work, Grace: time.Second, TriggerTimeout: time.Second})
	r.sup.start = r.run.start
	return r
}

// up runs the supervisor until the test ends or down.
func (r *rig) up() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.ended = cancel, make(chan error, 1)
	go func() { r.ended <- r.sup.Run(ctx) }()
	r.t.Cleanup(r.down)
}

// down ends the supervisor and waits for it.
func (r *rig) down() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.ended:
		if err != nil {
			r.t.Errorf("supervisor: %v", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Error("the supervisor did not stop")
	}
}

func (r *rig) exec(cmd commands.Command) {
	r.t.Helper()
	if _, err := r.cmds.Execute(context.Background(), cmd); err != nil {
		r.t.Fatalf("%T: %v", cmd, err)
	}
}

// started registers task id and starts it; the supervisor's process for
// it is returned.
func (r *rig) started(id string) *fakeProc {
	r.t.Helper()
	r.exec(commands.CreateTask{TaskID: id, Host: "127.0.0.1", Port: 9000, ServerCommand: []string{"server", "{task}", "{run}"}})
	r.exec(commands.StartTask{TaskID: id})
	p := r.proc()
	r.waitTypes(id, events.TaskServerStartedV1)
	return p
}

// proc is the next process the supervisor starts.
func (r *rig) proc() *fakeProc {
	r.t.Helper()
	select {
	case p := <-r.run.procs:
		return p
	case <-time.After(20 * time.Second):
		r.t.Fatal("no process was started")
		return nil
	}
}

// history is the task's events.
func (r *rig) history(id string) []events.Envelope {
	r.t.Helper()
	evs, err := r.log.LoadLatest(context.Background(), events.Task(id), 0)
	if err != nil {
		r.t.Fatal(err)
	}
	return evs
}

func types(evs []events.Envelope) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type)
	}
	return out
}

// waitTypes waits until the task's history holds every type of want,
// in that order (other events may come between).
func (r *rig) waitTypes(id string, want ...string) []events.Envelope {
	r.t.Helper()
	var evs []events.Envelope
	testkit.WaitFor(r.t, 20*time.Second, "events "+strings.Join(want, ", "), func() error {
		evs = r.history(id)
		rest := want
		for _, e := range evs {
			if len(rest) > 0 && e.Type == rest[0] {
				rest = rest[1:]
			}
		}
		if len(rest) > 0 {
			return fmt.Errorf("history %v", types(evs))
		}
		return nil
	})
	return evs
}

// settled waits until the supervisor runs nothing for the task any more,
// and returns its history then.
func (r *rig) settled(id string) []events.Envelope {
	r.t.Helper()
	testkit.WaitFor(r.t, 20*time.Second, "the run to end", func() error {
		r.sup.mu.Lock()
		defer r.sup.mu.Unlock()
		if _, ok := r.sup.runs[id]; ok {
			return errors.New("still running")
		}
		return nil
	})
	// The recorder is joined before the run leaves s.runs.
	return r.history(id)
}

// after returns the types recorded after the first event of type from.
func after(evs []events.Envelope, from string) []string {
	for i, e := range evs {
		if e.Type == from {
			return types(evs[i+1:])
		}
	}
	return nil
}

// What the supervisor records for each way a run of a server ends.
func TestSupervisorReactions(t *testing.T) {
	tests := []struct {
		name string
		// act drives the run.
		act func(r *rig, p *fakeProc)
		// want is the history after TaskServerStarted.
		want []string
		// stopped is whether the supervisor stopped the process.
		stopped bool
	}{
		{
			name: "finished_and_exited",
			act: func(r *rig, p *fakeProc) {
				p.say(taskd.Message{Kind: taskd.KindInfo, Text: taskd.Finished})
				p.end(0, "", false)
			},
			want: []string{events.TaskFinishedV1, events.TaskServerExitedV1},
		},
		{
			name: "finished_may_take_part_of_the_grace_to_exit",
			act: func(r *rig, p *fakeProc) {
				p.say(taskd.Message{Kind: taskd.KindInfo, Text: taskd.Finished})
				time.AfterFunc(r.sup.cfg.Grace/5, func() { p.end(0, "", false) })
			},
			want: []string{events.TaskFinishedV1, events.TaskServerExitedV1},
		},
		{
			name: "finished_but_lingering_is_stopped_after_the_grace",
			act: func(r *rig, p *fakeProc) {
				p.say(taskd.Message{Kind: taskd.KindInfo, Text: taskd.Finished})
			},
			want:    []string{events.TaskFinishedV1, events.TaskServerExitedV1},
			stopped: true,
		},
		{
			name: "error_line_errors_the_run_and_stops_the_server",
			act: func(r *rig, p *fakeProc) {
				p.say(taskd.Message{Kind: taskd.KindError, Text: "boom"})
			},
			want:    []string{events.TaskErroredV1, events.TaskServerExitedV1},
			stopped: true,
		},
		{
			name: "exit_without_a_report_is_an_error",
			act: func(r *rig, p *fakeProc) {
				p.end(3, "", false)
			},
			want: []string{events.TaskServerExitedV1, events.TaskErroredV1},
		},
		{
			name: "rounds_are_recorded_in_order",
			act: func(r *rig, p *fakeProc) {
				for i := 1; i <= 3; i++ {
					p.say(taskd.Message{Kind: taskd.KindModel, Round: i, Metrics: map[string]float64{"acc": float64(i) / 10}})
				}
				p.say(taskd.Message{Kind: taskd.KindLog, Text: "a log line records nothing"})
				p.say(taskd.Message{Kind: taskd.KindInfo, Text: taskd.Finished})
				p.end(0, "", false)
			},
			want: []string{events.TaskRoundCompletedV1, events.TaskRoundCompletedV1, events.TaskRoundCompletedV1,
				events.TaskFinishedV1, events.TaskServerExitedV1},
		},
		{
			name: "operator_stop_stops_the_server",
			act: func(r *rig, p *fakeProc) {
				r.exec(commands.StopTask{TaskID: "t"})
			},
			want:    []string{events.TaskStopRequestedV1, events.TaskServerExitedV1, events.TaskStoppedV1},
			stopped: true,
		},
		{
			name: "an_error_line_while_stopping_is_not_an_error",
			act: func(r *rig, p *fakeProc) {
				p.onStop(func() { p.say(taskd.Message{Kind: taskd.KindError, Text: "interrupted"}) })
				r.exec(commands.StopTask{TaskID: "t"})
			},
			want:    []string{events.TaskStopRequestedV1, events.TaskServerExitedV1, events.TaskStoppedV1},
			stopped: true,
		},
		{
			name: "a_second_error_is_not_recorded",
			act: func(r *rig, p *fakeProc) {
				p.say(taskd.Message{Kind: taskd.KindError, Text: "first"},
					taskd.Message{Kind: taskd.KindError, Text: "second"},
					taskd.Message{Kind: taskd.KindInfo, Text: taskd.Finished})
			},
			want:    []string{events.TaskErroredV1, events.TaskServerExitedV1},
			stopped: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			r.up()
			p := r.started("t")
			tc.act(r, p)
			evs := r.settled("t")
			if got := after(evs, events.TaskServerStartedV1); !slices.Equal(got, tc.want) {
				t.Fatalf("after the start:\n got %v\nwant %v", got, tc.want)
			}
			if got := p.stopCalls() > 0; got != tc.stopped {
				t.Fatalf("server stopped by the supervisor: %v, want %v", got, tc.stopped)
			}
		})
	}
}

// The start is recorded with the process's pid, the supervisor's name
// and the command it ran, expanded.
func TestSupervisorRecordsTheStart(t *testing.T) {
	r := newRig(t)
	r.up()
	p := r.started("t")
	evs := r.waitTypes("t", events.TaskStartRequestedV1, events.TaskServerStartedV1)
	var req *events.TaskStartRequested
	var got *events.TaskServerStarted
	for _, e := range evs {
		switch v := e.Event.(type) {
		case *events.TaskStartRequested:
			req = v
		case *events.TaskServerStarted:
			got = v
		}
	}
	want := []string{"server", "t", req.Run}
	if got.PID != p.pid || got.Supervisor != "sup-1" || got.Run != req.Run || !slices.Equal(got.Command, want) {
		t.Fatalf("server started %+v, want pid %d, supervisor sup-1, run %s, command %v", got, p.pid, req.Run, want)
	}
	if p.cfg.Dir != launch.TaskDir(r.work, "t") {
		t.Fatalf("server runs in %s, want the task directory %s", p.cfg.Dir, launch.TaskDir(r.work, "t"))
	}
}

// A server that cannot be started errors the run, saying why.
func TestSupervisorRecordsAServerThatCannotStart(t *testing.T) {
	r := newRig(t)
	r.run.fail = errors.New("exec: no such file")
	r.up()
	r.exec(commands.CreateTask{TaskID: "t", Host: "127.0.0.1", Port: 9000, ServerCommand: []string{"server"}})
	r.exec(commands.StartTask{TaskID: "t"})
	evs := r.waitTypes("t", events.TaskErroredV1)
	e := evs[len(evs)-1].Event.(*events.TaskErrored)
	if !strings.Contains(e.Exception, "cannot start the server: exec: no such file") {
		t.Fatalf("exception %q does not say why", e.Exception)
	}
	if slices.Contains(types(evs), events.TaskServerStartedV1) {
		t.Fatalf("a server that never started was recorded started: %v", types(evs))
	}
}

// When the cloud shuts down, every run it supervises is interrupted, not
// stopped, errored or finished.
func TestSupervisorShutdownInterruptsRuns(t *testing.T) {
	r := newRig(t)
	r.up()
	p := r.started("t")
	r.down()
	evs := r.history("t")
	if got, want := after(evs, events.TaskServerStartedV1), []string{events.TaskServerExitedV1, events.TaskInterruptedV1}; !slices.Equal(got, want) {
		t.Fatalf("after a shutdown: %v, want %v", got, want)
	}
	if p.stopCalls() == 0 {
		t.Fatal("the server was not stopped at shutdown")
	}
}

// A restarted supervisor records as interrupted the runs it started in an
// earlier life and that never ended; another supervisor's runs are not
// its own.
func TestSupervisorReconcilesAnEarlierLife(t *testing.T) {
	r := newRig(t)
	for _, id := range []string{"mine", "theirs"} {
		r.exec(commands.CreateTask{TaskID: id, Host: "127.0.0.1", Port: 9000, ServerCommand: []string{"server"}})
		r.exec(commands.StartTask{TaskID: id})
	}
	// The earlier life started both runs' servers, then died.
	for id, by := range map[string]string{"mine": "sup-1", "theirs": "sup-2"} {
		evs := r.history(id)
		run := evs[len(evs)-1].Event.(*events.TaskStartRequested).Run
		r.exec(commands.RecordRun{TaskID: id, Event: &events.TaskServerStarted{Run: run, PID: 1, Supervisor: by}})
	}
	r.up()
	evs := r.waitTypes("mine", events.TaskServerStartedV1, events.TaskInterruptedV1)
	if e := evs[len(evs)-1].Event.(*events.TaskInterrupted); !strings.Contains(e.Reason, "restarted") {
		t.Fatalf("interrupted because %q", e.Reason)
	}
	if err := testkit.Never(300*time.Millisecond, func() error {
		if got := after(r.history("theirs"), events.TaskServerStartedV1); len(got) > 0 {
			return fmt.Errorf("another supervisor's run was recorded %v", got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-r.run.procs:
		t.Fatalf("a process was started on restart: %v", p.cfg.Argv)
	default:
	}
}

// A trigger the server fires is recorded, run as one program with its
// arguments as one argument, and its exit recorded; a missing trigger is
// recorded as not run.
func TestSupervisorRunsTriggers(t *testing.T) {
	r := newRig(t)
	r.up()
	p := r.started("t")
	dir := launch.TaskDir(r.work, "t")
	if err := os.WriteFile(filepath.Join(dir, "notify"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p.say(taskd.Message{Kind: taskd.KindTrigger, Trigger: "notify", Arguments: "a b"})
	trig := r.proc()
	if want := []string{filepath.Join(dir, "notify"), "a b"}; !slices.Equal(trig.cfg.Argv, want) {
		t.Fatalf("trigger argv %q, want %q", trig.cfg.Argv, want)
	}
	trig.end(3, "", false)
	p.say(taskd.Message{Kind: taskd.KindTrigger, Trigger: "absent"})
	p.say(taskd.Message{Kind: taskd.KindInfo, Text: taskd.Finished})
	p.end(0, "", false)
	evs := r.settled("t")
	var ran []events.TaskTriggerRan
	for _, e := range evs {
		if v, ok := e.Event.(*events.TaskTriggerRan); ok {
			ran = append(ran, *v)
		}
	}
	slices.SortFunc(ran, func(a, b events.TaskTriggerRan) int { return strings.Compare(a.Name, b.Name) })
	if len(ran) != 2 || ran[1].Name != "notify" || ran[1].Code != 3 || ran[1].Error != "exit code 3" ||
		ran[0].Name != "absent" || ran[0].Code != -1 || !strings.Contains(ran[0].Error, "not found") {
		t.Fatalf("triggers ran %+v", ran)
	}
	fired := 0
	for _, e := range evs {
		if e.Type == events.TaskTriggerFiredV1 {
			fired++
		}
	}
	if fired != 2 {
		t.Fatalf("%d triggers fired, want 2", fired)
	}
	if got := types(evs); slices.Index(got, events.TaskFinishedV1) > slices.Index(got, events.TaskServerExitedV1) {
		t.Fatalf("finished after the exit: %v", got)
	}
}
