package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/files"
	"github.com/flmngr/flmngr/services/launch"
	"github.com/flmngr/flmngr/taskd"
	"github.com/flmngr/flmngr/tasks/flowerapp"
)

// clientRun is one task run on this client.
type clientRun struct {
	offer     events.Offer
	offersSeq uint64             // the offers event that offered it
	stop      chan string        // why the agent stops it
	report    chan taskd.Message // Started, error and Finished lines, in order
	freed     bool               // the slot was given back (loop goroutine)
	approval  string             // the statement the site approved ("": none asked)
}

func runKey(o events.Offer) commands.TaskRun { return commands.TaskRun{TaskID: o.TaskID, Run: o.Run} }

// stop reasons
const (
	reasonWithdrawn = "the task is no longer offered"
	reasonFinished  = "the task finished"
	reasonShutdown  = "the agent shut down"
)

// reconcile stops what is no longer offered and starts what the policy
// allows. It runs on the loop goroutine.
func (a *Agent) reconcile(ctx context.Context) {
	if a.stopping || a.cfg.simulate {
		return
	}
	offered := map[commands.TaskRun]bool{}
	for _, o := range a.offers {
		offered[runKey(o)] = true
	}
	for k, r := range a.procs {
		if !offered[k] && !r.freed {
			if a.finished[k.TaskID] {
				r.requestStop(reasonFinished)
			} else {
				r.requestStop(reasonWithdrawn)
			}
		}
	}
	held := a.holdForApproval(ctx)
	for _, o := range a.offers {
		if a.cfg.MaxTasks > 0 && a.slots() >= a.cfg.MaxTasks {
			return
		}
		k := runKey(o)
		if _, running := a.procs[k]; running || a.done[k] || a.quarantined[key{o.TaskID, o.Run, o.SpecSeq}] || a.busyTask(o.TaskID) || held[k] {
			continue
		}
		r := &clientRun{offer: o, offersSeq: a.offersSeq, stop: make(chan string, 1), report: make(chan taskd.Message, 8), approval: a.approvalOf(o)}
		a.procs[k] = r
		a.runs.Go(func() { a.runTask(ctx, r) })
	}
}

// slots counts the runs holding a slot.
func (a *Agent) slots() int {
	n := 0
	for _, r := range a.procs {
		if !r.freed {
			n++
		}
	}
	return n
}

// busyTask reports whether some run of a task is still on this client
// (an older run still stopping, say).
func (a *Agent) busyTask(task string) bool {
	for k := range a.procs {
		if k.TaskID == task {
			return true
		}
	}
	return false
}

func (r *clientRun) requestStop(reason string) {
	select {
	case r.stop <- reason:
	default:
	}
}

// runTask downloads, verifies and runs one task run, and records how it
// went. The slot is given back as soon as the outcome is known (an error
// or Finished line, an exit, a stop), so the next task starts at once;
// the process is then stopped in the background.
func (a *Agent) runTask(ctx context.Context, r *clientRun) {
	o := r.offer
	k := runKey(o)
	free := func(failed, finished bool) {
		a.send(context.WithoutCancel(ctx), func() {
			r.freed = true
			if failed {
				a.quarantined[key{o.TaskID, o.Run, o.SpecSeq}] = true
			}
			if finished {
				a.done[k] = true
			}
			a.reconcile(ctx)
		})
	}
	defer a.send(context.WithoutCancel(ctx), func() {
		delete(a.procs, k)
		a.reconcile(ctx)
	})
	fail := func(exception string, exit *events.ExitStatus) {
		a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskErrored, TaskID: o.TaskID, Run: o.Run, Exception: exception, Exit: exit})
		a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskQuarantined, TaskID: o.TaskID, Run: o.Run, SpecSeq: o.SpecSeq, Reason: exception})
		free(true, false)
	}
	if err := a.trusted(o); err != nil && !(r.approval != "" && a.cfg.Approval == ApprovalTrusted) {
		a.cfg.Logger.Warn("task refused", "task_id", o.TaskID, "run", o.Run, "err", err)
		a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskRefused, TaskID: o.TaskID, Run: o.Run, SpecSeq: o.SpecSeq, Reason: err.Error()})
		a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskQuarantined, TaskID: o.TaskID, Run: o.Run, SpecSeq: o.SpecSeq, Reason: err.Error()})
		free(true, false)
		return
	}
	proc, argv, err := a.launch(ctx, r)
	if err != nil {
		a.cfg.Logger.Warn("cannot run task", "task_id", o.TaskID, "run", o.Run, "err", err)
		fail(err.Error(), nil)
		return
	}
	a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskStarted, TaskID: o.TaskID, Run: o.Run, PID: proc.PID(), Command: argv})
	a.cfg.Logger.Info("task started", "task_id", o.TaskID, "run", o.Run, "pid", proc.PID())

	finished, running := false, false
	onStarted := func() {
		if !running {
			running = true
			a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskRunning, TaskID: o.TaskID, Run: o.Run})
		}
	}
	// onLine handles a Started, error or Finished line; it reports
	// whether the outcome is decided.
	onLine := func(m taskd.Message) bool {
		switch {
		case m.Kind == taskd.KindInfo && !m.IsFinished():
			onStarted()
			return false
		case m.Kind == taskd.KindError:
			fail(a.errorText(o, proc, m.Text), nil)
		default:
			finished = true
			a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskFinished, TaskID: o.TaskID, Run: o.Run})
			free(false, true)
		}
		return true
	}
	decided := false
	for !decided {
		select {
		case <-proc.Done():
			// Every line was handed over before Done: read what is left.
			for len(r.report) > 0 {
				if m := <-r.report; m.Kind == taskd.KindInfo {
					onStarted()
				}
			}
			ex := proc.Exit()
			if ex.Limit != "" {
				a.cfg.Output(o.TaskID, o.Run, limitLine(ex))
			}
			switch ex.Outcome {
			case taskd.OutcomeFinished:
				finished = true
				a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskFinished, TaskID: o.TaskID, Run: o.Run})
				free(false, true)
			case taskd.OutcomeErrored:
				fail(ex.Exception, exitStatus(ex))
			default:
				fail(fmt.Sprintf("the client process exited without reporting Finished or an error (%s)", exitText(ex)), exitStatus(ex))
			}
			decided = true
		case m := <-r.report:
			decided = onLine(m)
		case reason := <-r.stop:
			if reason == reasonFinished {
				// The task's run finished on the server: let the client
				// process finish by itself, within the grace period.
				if m, ok := a.awaitEnd(r, proc, onStarted); ok {
					decided = onLine(m)
					continue
				}
			}
			kind := commands.ClientTaskStopped
			if reason == reasonShutdown {
				kind = commands.ClientTaskInterrupted
			}
			if _, err := proc.Stop(context.Background()); err != nil {
				a.cfg.Logger.Error("client process would not stop", "task_id", o.TaskID, "pid", proc.PID(), "err", err)
			}
			a.report(ctx, commands.ReportClientTask{Kind: kind, TaskID: o.TaskID, Run: o.Run, Reason: reason})
			free(false, false)
			a.reportExit(ctx, o, proc)
			return
		}
	}
	if finished {
		// A process that said "Finished" may exit by itself.
		select {
		case <-proc.Done():
		case <-time.After(a.cfg.Grace):
		}
	}
	if _, err := proc.Stop(context.Background()); err != nil {
		a.cfg.Logger.Error("client process would not stop", "task_id", o.TaskID, "pid", proc.PID(), "err", err)
	}
	a.reportExit(ctx, o, proc)
}

// awaitEnd waits up to the grace period for a process to report Finished
// or an error, or to exit. It hands back what decides the outcome.
func (a *Agent) awaitEnd(r *clientRun, proc *taskd.Process, onStarted func()) (taskd.Message, bool) {
	timer := time.NewTimer(a.cfg.Grace)
	defer timer.Stop()
	for {
		select {
		case m := <-r.report:
			if m.Kind == taskd.KindError || m.IsFinished() {
				return m, true
			}
			onStarted()
		case <-proc.Done():
			ex := proc.Exit()
			switch ex.Outcome {
			case taskd.OutcomeFinished:
				return taskd.Message{Kind: taskd.KindInfo, Text: taskd.Finished}, true
			case taskd.OutcomeErrored:
				return taskd.Message{Kind: taskd.KindError, Text: ex.Exception}, true
			}
			return taskd.Message{}, false
		case <-timer.C:
			return taskd.Message{}, false
		}
	}
}

// reportExit records that a client process is gone.
func (a *Agent) reportExit(ctx context.Context, o events.Offer, proc *taskd.Process) {
	select {
	case <-proc.Done():
	default:
		return // it would not stop; already logged
	}
	ex := proc.Exit()
	a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskExited, TaskID: o.TaskID, Run: o.Run, Exit: exitStatus(ex)})
	// Logged once the report is in the outbox (and its journal).
	a.cfg.Logger.Info("task exited", "task_id", o.TaskID, "run", o.Run, "outcome", ex.Outcome, "code", ex.Code, "duration", ex.Duration.Round(time.Millisecond))
}

// launch downloads and verifies the task's files and starts the client
// process.
func (a *Agent) launch(ctx context.Context, r *clientRun) (*taskd.Process, []string, error) {
	o := r.offer
	for _, f := range o.Files {
		if f.SHA256 == "" {
			return nil, nil, fmt.Errorf("file %s of task %s was never uploaded", f.Name, o.TaskID)
		}
	}
	dir := launch.TaskDir(a.cfg.WorkDir, o.TaskID)
	start := time.Now()
	// The cloud serves the files as the offer this run acts on has them.
	remote := files.Remote{Get: func(ctx context.Context, task string, ref events.FileRef, offset int64) ([]byte, error) {
		return a.conn.FileChunkOffered(ctx, r.offersSeq, task, ref, offset)
	}}
	limits, err := a.limits(o)
	if err != nil {
		return nil, nil, err
	}
	if err := remote.Materialize(ctx, o.TaskID, o.Files, dir); err != nil {
		return nil, nil, fmt.Errorf("download: %w", err)
	}
	a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskDownloaded, TaskID: o.TaskID, Run: o.Run, Files: o.Files, Duration: time.Since(start)})
	if o.SuperLinkCA != "" {
		// A Flower App: a fresh SuperNode key pair for this run, made
		// here; only its public key is reported, for the cloud to
		// register with the SuperLink.
		pub, err := flowerapp.PrepareNode(flowerapp.StateDir(a.cfg.WorkDir, o.TaskID), []byte(o.SuperLinkCA))
		if err != nil {
			return nil, nil, fmt.Errorf("supernode key: %w", err)
		}
		a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskSuperNodeKey, TaskID: o.TaskID, Run: o.Run, PublicKey: pub})
	}
	args := ""
	if o.ClientArguments != nil {
		args = *o.ClientArguments
	}
	vars := map[string]string{"task": o.TaskID, "run": o.Run, "host": o.Host, "port": strconv.Itoa(o.Port), "client": a.cfg.ClientID}
	argv, err := launch.Argv(launch.Spec{Entry: commands.ClientEntryPoint, Command: o.ClientCommand, Arguments: args, WorkDir: a.cfg.WorkDir, TaskDir: dir, Vars: vars})
	if err != nil {
		return nil, nil, err
	}
	proc, err := taskd.Start(taskd.Config{
		Argv: argv, Dir: dir, Env: launch.Env(vars), Grace: a.cfg.Grace,
		PIDFile: filepath.Join(a.pidDir(), "task_"+o.TaskID+".pid"), Limits: limits,
		OnMessage: func(m taskd.Message) {
			a.cfg.Output(o.TaskID, o.Run, m)
			if m.Kind == taskd.KindError || (m.Kind == taskd.KindInfo && (m.IsFinished() || m.Text == "Started")) {
				select {
				case r.report <- m:
				default: // the run goroutine already has what decides the outcome
				}
			}
		},
	})
	if err != nil {
		return nil, nil, err
	}
	if !limits.IsZero() {
		a.cfg.Logger.Info("task limits", "task_id", o.TaskID, "run", o.Run, "pid", proc.PID(), "limits", limits.String(), "enforcement", proc.Enforcement())
	}
	return proc, argv, nil
}

func exitStatus(ex taskd.Exit) *events.ExitStatus {
	return &events.ExitStatus{Code: ex.Code, Signal: ex.Signal, Duration: ex.Duration, LastLogs: ex.LastLogs}
}

func exitText(ex taskd.Exit) string {
	if ex.Signal != "" {
		return "signal " + ex.Signal
	}
	return "exit code " + strconv.Itoa(ex.Code)
}

// shutdown stops every task process, records them as interrupted and
// waits for their goroutines, serving their posts meanwhile.
func (a *Agent) shutdown() {
	a.stopping = true
	for _, r := range a.procs {
		r.requestStop(reasonShutdown)
	}
	done := make(chan struct{})
	go func() { a.runs.Wait(); close(done) }()
	for {
		select {
		case fn := <-a.post:
			fn()
		case <-done:
			return
		}
	}
}
