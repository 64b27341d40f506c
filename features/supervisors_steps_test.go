package features

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cucumber/godog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/files"
	"github.com/flmngr/flmngr/services/testkit"
)

func initSupervisorSteps(sc *godog.ScenarioContext) {
	sc.Step(`^a running flmngr process$`, startFlmngrProcess)
	sc.Step(`^flmngr gets SIGTERM$`, sigtermFlmngr)
	sc.Step(`^flmngr is started again$`, open)
	sc.Step(`^a task "([^"]*)" for clients where (.+)$`, func(ctx context.Context, id, crit string) error { return createTask(ctx, id, crit, "") })
	sc.Step(`^a task "([^"]*)" for every client$`, func(ctx context.Context, id string) error { return createTask(ctx, id, "", "") })
	sc.Step(`^a task "([^"]*)" whose client (errors|crashes) at once$`, func(ctx context.Context, id, how string) error {
		return createTask(ctx, id, "", map[string]string{"errors": "error", "crashes": "crash"}[how])
	})
	sc.Step(`^the server of task "([^"]*)" fires trigger "([^"]*)" when it finishes(, and the trigger exists)?$`, withTrigger)
	sc.Step(`^the stored file "([^"]*)" of task "([^"]*)" is tampered with$`, tamper)
	sc.Step(`^a client "([^"]*)" with sensors "([^"]*)"(?: and policy "(one|all)")?(?: starts)?$`, func(ctx context.Context, id, sensors, policy string) error {
		return startAgent(ctx, id, sensors, policy)
	})
	sc.Step(`^a client "([^"]*)" with sensors "([^"]*)" that approves tasks (manually)$`, startAgent)
	sc.Step(`^client "([^"]*)" awaits approval of task "([^"]*)"$`, awaitsApproval)
	sc.Step(`^the site of "([^"]*)" runs (flmngr .+)$`, func(ctx context.Context, id, line string) error {
		return runCLI(ctx, line+" --workdir "+filepath.Join(w(ctx).dir, "agents", id))
	})
	sc.Step(`^the agent of "([^"]*)" is restarted$`, restartAgent)
	sc.Step(`^the agent of "([^"]*)" gets SIGTERM$`, sigtermAgent)
	sc.Step(`^task "([^"]*)" becomes "([^"]*)"$`, taskBecomes)
	sc.Step(`^task "([^"]*)" completed round (\d+) with accuracy ([0-9.]+)$`, taskRound)
	sc.Step(`^the output of task get "([^"]*)" shows "([^"]*)" as "([^"]*)"$`, taskGetShows)
	sc.Step(`^the server process of task "([^"]*)" is running$`, serverRunning)
	sc.Step(`^the server process of task "([^"]*)" is gone$`, func(ctx context.Context, task string) error { return processGone(ctx, "server/"+task) })
	sc.Step(`^the client process of task "([^"]*)" on "([^"]*)" is running$`, clientProcessRunning)
	sc.Step(`^the client process of task "([^"]*)" on "([^"]*)" is gone$`, func(ctx context.Context, task, c string) error {
		return processGone(ctx, "client/"+c+"/"+task)
	})
	sc.Step(`^the server of task "([^"]*)" is told to (finish|fail|crash)$`, tellServer)
	sc.Step(`^the client of task "([^"]*)" on "([^"]*)" is told to finish$`, tellClient)
	sc.Step(`^client "([^"]*)" runs task "([^"]*)"$`, clientRuns)
	sc.Step(`^client "([^"]*)" runs nothing$`, func(ctx context.Context, c string) error { return clientRunsN(ctx, c, 0) })
	sc.Step(`^client "([^"]*)" runs (\d+) tasks?$`, clientRunsN)
	sc.Step(`^client "([^"]*)" is offered nothing$`, func(ctx context.Context, c string) error { return clientOffered(ctx, c, "") })
	sc.Step(`^client "([^"]*)" is offered "([^"]*)"$`, clientOffered)
	sc.Step(`^client "([^"]*)" has (not )?quarantined task "([^"]*)"$`, clientQuarantined)
	sc.Step(`^client "([^"]*)" finished task "([^"]*)"$`, clientFinished)
	sc.Step(`^the last error of task "([^"]*)" on client "([^"]*)" mentions "([^"]*)"$`, lastClientError)
	sc.Step(`^the last error of task "([^"]*)" mentions "([^"]*)"$`, func(ctx context.Context, id, text string) error {
		t, err := task(ctx, id)
		if err != nil {
			return err
		}
		if !strings.Contains(t.LastError, text) {
			return fmt.Errorf("last error of %s: %q", id, t.LastError)
		}
		return nil
	})
	sc.Step(`^client "([^"]*)" never started task "([^"]*)"( again)?$`, neverStarted)
	sc.Step(`^the events of client "([^"]*)" are, in order:$`, clientEventsInOrder)
	sc.Step(`^client "([^"]*)" reported task "([^"]*)" running$`, clientReportedRunning)
	sc.Step(`^trigger "([^"]*)" of task "([^"]*)" ran with (error|exit code) "?([^"]*)"?$`, triggerRan)
	sc.Step(`^the trigger of task "([^"]*)" got one argument "([^"]*)"$`, triggerArgument)
}

// waitFor polls cond until it returns nil or the scenario's patience runs
// out; the last error explains the failure.
func waitFor(ctx context.Context, cond func() error) error {
	return testkit.Poll(ctx, 20*time.Second, cond)
}

// quietWindow is how long a negative check ("never", "not") watches: long
// enough for an agent that would still act (a retry, a failover, the next
// offer) to have done so.
const quietWindow = 3 * time.Second

// holds checks that cond keeps returning nil for the quiet window; the
// error says when it first failed.
func holds(ctx context.Context, cond func() error) error {
	if err := testkit.Never(quietWindow, cond); err != nil {
		return err
	}
	return ctx.Err()
}

func startFlmngrProcess(ctx context.Context) error {
	wd := w(ctx)
	addr, err := testkit.LoopbackAddr()
	if err != nil {
		return err
	}
	wd.proc, err = startProcess(wd.dir, "flmngr-up", "up", "--data", wd.dataDir(), "--listen", addr, "--http", "127.0.0.1:0", "--name", "features")
	if err != nil {
		return err
	}
	var opts []nats.Option
	if err := waitFor(ctx, func() (err error) { opts, err = wd.operator(); return err }); err != nil {
		return err
	}
	nc, err := nats.Connect("nats://"+addr, append(opts, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	if err != nil {
		return err
	}
	wd.url, wd.nc, wd.api = "nats://"+addr, nc, api.NewClient(nc, 5*time.Second)
	return waitFor(ctx, func() error { _, err := wd.api.Status(ctx); return err })
}

func sigtermFlmngr(ctx context.Context) error {
	wd := w(ctx)
	err := wd.proc.signal(syscall.SIGTERM, 20*time.Second)
	wd.nc.Close()
	wd.proc, wd.nc = nil, nil
	return err
}

const serverScript = `echo '{"type":"info","info":"Started"}'
while :; do
  if [ -e finish ]; then
    echo '{"type":"model","round":"1","acc":"0.5"}'
    echo '{"type":"model","round":"2","acc":"0.8"}'
    %s
    echo '{"type":"info","info":"Finished"}'
    exit 0
  fi
  if [ -e fail ]; then echo '{"type":"error","exception":"server failed"}'; sleep 600; fi
  if [ -e crash ]; then echo 'crashing' >&2; exit 7; fi
  sleep 0.05
done
`

const clientScript = `echo '{"type":"info","info":"Started"}'
case "$2" in
  error) echo '{"type":"error","exception":"client failed"}'; sleep 600;;
  crash) echo 'about to crash' >&2; exit 3;;
esac
while :; do
  if [ -e finish ]; then echo '{"type":"info","info":"Finished"}'; exit 0; fi
  sleep 0.05
done
`

// createTask registers a task whose server and client are the shell
// scripts above, through the CLI, and uploads them.
func createTask(ctx context.Context, id, criterion, clientArgs string) error {
	wd := w(ctx)
	dir := filepath.Join(wd.dir, "src-"+id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "server.sh"), fmt.Appendf(nil, serverScript, ""), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "client.sh"), []byte(clientScript), 0o644); err != nil {
		return err
	}
	line := fmt.Sprintf(`flmngr task create %s --host localhost --port 8080 --files client.sh --server-cmd "sh server.sh" --client-cmd "sh client.sh {workdir}"`, id)
	if criterion != "" {
		line += " --criterion '" + criterion + "'"
	}
	if clientArgs != "" {
		line += " --client-args " + clientArgs
	}
	if err := ranCLI(ctx, line); err != nil {
		return err
	}
	return ranCLI(ctx, fmt.Sprintf("flmngr task upload %s %s %s", id, filepath.Join(dir, "server.sh"), filepath.Join(dir, "client.sh")))
}

func withTrigger(ctx context.Context, id, name, exists string) error {
	wd := w(ctx)
	dir := filepath.Join(wd.dir, "src-"+id)
	line := fmt.Sprintf(`echo '{"type":"trigger","trigger_name":"%s","trigger_arguments":"0.8 reached"}'`, name)
	if err := os.WriteFile(filepath.Join(dir, "server.sh"), fmt.Appendf(nil, serverScript, line), 0o644); err != nil {
		return err
	}
	upload := fmt.Sprintf("flmngr task upload %s %s", id, filepath.Join(dir, "server.sh"))
	if exists != "" {
		trigger := filepath.Join(dir, name)
		if err := os.WriteFile(trigger, []byte("#!/bin/sh\nprintf '%s\\n' \"$#\" \"$1\" > trigger.out\n"), 0o755); err != nil {
			return err
		}
		upload += " " + trigger
	}
	return ranCLI(ctx, upload)
}

// tamper replaces the stored bytes of a task file behind its digest, as
// an attacker with write access to the store could.
func tamper(ctx context.Context, name, task string) error {
	wd := w(ctx)
	t, err := wd.api.Task(ctx, task)
	if err != nil {
		return err
	}
	idx := slices.IndexFunc(t.Files, func(f events.FileRef) bool { return f.Name == name })
	if idx < 0 {
		return fmt.Errorf("task %s has no file %s", task, name)
	}
	// Tampering takes what only the cloud has: its trust material.
	admin, err := wd.admin()
	if err != nil {
		return err
	}
	defer admin.Close()
	js, err := jetstream.New(admin)
	if err != nil {
		return err
	}
	obs, err := js.ObjectStore(ctx, files.Bucket)
	if err != nil {
		return err
	}
	_, err = obs.PutString(ctx, task+"/"+t.Files[idx].SHA256, "echo '{\"type\":\"info\",\"info\":\"Finished\"}' # not what was uploaded\n")
	return err
}

// startAgent starts client id's agent; policy is one, all or "manually"
// (policy one, approval manual).
func startAgent(ctx context.Context, id, sensors, policy string) error {
	wd := w(ctx)
	approval := "any"
	switch policy {
	case "":
		policy = "one"
	case "manually":
		policy, approval = "one", "manual"
	}
	key := filepath.Join(wd.dir, "agents", id+".creds")
	if _, err := os.Stat(key); err != nil {
		// Each client gets its identity as an operator would give it.
		out, err := exec.Command(binary, "client-credentials", "create", id, "--out", key, "--nats", wd.url, "--creds", wd.operatorKey()).CombinedOutput()
		if err != nil {
			return fmt.Errorf("client-credentials create %s: %v\n%s", id, err, out)
		}
	}
	p, err := startProcess(wd.dir, "agent-"+id, "client", "--id", id, "--sensors", sensors, "--policy", policy, "--creds", key,
		"--workdir", filepath.Join(wd.dir, "agents", id), "--nats", wd.url, "--heartbeat", "200ms", "--grace", "2s", "--approval", approval)
	if err != nil {
		return err
	}
	wd.agents[id] = p
	return waitFor(ctx, func() error { _, err := wd.api.User(ctx, id); return err })
}

func restartAgent(ctx context.Context, id string) error {
	wd := w(ctx)
	old := wd.agents[id]
	if err := old.signal(syscall.SIGTERM, 20*time.Second); err != nil {
		return err
	}
	p, err := startProcess(wd.dir, "agent-"+id, old.args...)
	wd.agents[id] = p
	return err
}

func sigtermAgent(ctx context.Context, id string) error {
	return w(ctx).agents[id].signal(syscall.SIGTERM, 20*time.Second)
}

func taskBecomes(ctx context.Context, id, status string) error {
	return waitFor(ctx, func() error { return taskHasStatus(ctx, id, status) })
}

func taskRound(ctx context.Context, id string, round int, acc float64) error {
	t, err := task(ctx, id)
	if err != nil {
		return err
	}
	if t.Round != round || t.Metrics["accuracy"] != acc {
		return fmt.Errorf("task %s: round %d metrics %v", id, t.Round, t.Metrics)
	}
	return nil
}

func taskGetShows(ctx context.Context, id, key, value string) error {
	if err := runCLI(ctx, "flmngr task get "+id); err != nil {
		return err
	}
	return outputShows(ctx, key, value, "")
}

// alive reports whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func serverRunning(ctx context.Context, id string) error {
	wd := w(ctx)
	return waitFor(ctx, func() error {
		t, err := task(ctx, id)
		if err != nil {
			return err
		}
		if t.ServerPID == 0 || !alive(t.ServerPID) {
			return fmt.Errorf("task %s has no live server process (pid %d, %s)", id, t.ServerPID, t.Status)
		}
		wd.pids["server/"+id] = t.ServerPID
		return nil
	})
}

func processGone(ctx context.Context, name string) error {
	pid, ok := w(ctx).pids[name]
	if task, isServer := strings.CutPrefix(name, "server/"); !ok && isServer {
		pid, ok = serverPIDFromLog(ctx, task)
	}
	if !ok {
		return fmt.Errorf("no %s process was seen running", name)
	}
	return waitFor(ctx, func() error {
		if alive(pid) {
			return fmt.Errorf("%s process %d is still running", name, pid)
		}
		return nil
	})
}

// serverPIDFromLog finds the pid the last "server started" event of a task
// recorded.
func serverPIDFromLog(ctx context.Context, task string) (int, bool) {
	r, err := w(ctx).api.Timeline(ctx, api.TimelineRequest{TimelineQuery: projections.TimelineQuery{Task: task, Limit: 10000}})
	if err != nil {
		return 0, false
	}
	for i := len(r.Entries) - 1; i >= 0; i-- {
		if e := r.Entries[i]; e.Type == "task.server_started.v1" {
			pid, err := strconv.Atoi(strings.TrimPrefix(e.Detail, "pid "))
			return pid, err == nil
		}
	}
	return 0, false
}

func user(ctx context.Context, id string) (projections.ClientView, error) {
	return w(ctx).api.User(ctx, id)
}

func clientRuns(ctx context.Context, c, task string) error {
	return waitFor(ctx, func() error {
		u, err := user(ctx, c)
		if err != nil {
			return err
		}
		for _, r := range u.Running {
			if r.TaskID == task {
				w(ctx).pids["client/"+c+"/"+task] = r.PID
				return nil
			}
		}
		return fmt.Errorf("client %s runs %v, not %s (offers %v, quarantined %v)", c, u.Running, task, offerIDs(u), u.Quarantined)
	})
}

func clientProcessRunning(ctx context.Context, task, c string) error {
	if err := clientRuns(ctx, c, task); err != nil {
		return err
	}
	pid := w(ctx).pids["client/"+c+"/"+task]
	if !alive(pid) {
		return fmt.Errorf("client process %d of task %s is not running", pid, task)
	}
	return nil
}

func clientRunsN(ctx context.Context, c string, n int) error {
	return waitFor(ctx, func() error {
		u, err := user(ctx, c)
		if err != nil {
			return err
		}
		if len(u.Running) != n {
			return fmt.Errorf("client %s runs %d tasks %v, want %d", c, len(u.Running), u.Running, n)
		}
		return nil
	})
}

func offerIDs(u projections.ClientView) string {
	var ids []string
	for _, o := range u.Offers {
		ids = append(ids, o.TaskID)
	}
	return strings.Join(ids, ", ")
}

func clientOffered(ctx context.Context, c, want string) error {
	return waitFor(ctx, func() error {
		u, err := user(ctx, c)
		if err != nil {
			return err
		}
		if got := offerIDs(u); got != want {
			return fmt.Errorf("client %s is offered %q, want %q", c, got, want)
		}
		return nil
	})
}

func clientQuarantined(ctx context.Context, c, not, task string) error {
	check := func() error {
		u, err := user(ctx, c)
		if err != nil {
			return err
		}
		has := slices.ContainsFunc(u.Quarantined, func(q commands.Quarantine) bool { return q.TaskID == task })
		if has == (not != "") {
			return fmt.Errorf("client %s quarantined %v", c, u.Quarantined)
		}
		return nil
	}
	if not != "" {
		return holds(ctx, check)
	}
	return waitFor(ctx, check)
}

func clientFinished(ctx context.Context, c, task string) error {
	return waitFor(ctx, func() error {
		u, err := user(ctx, c)
		if err != nil {
			return err
		}
		for _, d := range u.Done {
			if d.TaskID == task {
				return nil
			}
		}
		return fmt.Errorf("client %s has not finished %s (done %v)", c, task, u.Done)
	})
}

func clientTimeline(ctx context.Context, c string) ([]projections.TimelineEntry, error) {
	r, err := w(ctx).api.Timeline(ctx, api.TimelineRequest{TimelineQuery: projections.TimelineQuery{Client: c, Limit: 10000}})
	return r.Entries, err
}

func lastClientError(ctx context.Context, task, c, text string) error {
	return waitFor(ctx, func() error {
		entries, err := clientTimeline(ctx, c)
		if err != nil {
			return err
		}
		for i := len(entries) - 1; i >= 0; i-- {
			if e := entries[i]; e.Type == "client.task_errored.v1" && e.Task == task {
				if !strings.Contains(e.Detail, text) {
					return fmt.Errorf("last error of %s on %s: %q", task, c, e.Detail)
				}
				return nil
			}
		}
		return fmt.Errorf("no error of %s on %s yet", task, c)
	})
}

// awaitsApproval waits until a client's agent reports that it holds a
// task back for its site's approval.
func awaitsApproval(ctx context.Context, c, task string) error {
	return waitFor(ctx, func() error {
		entries, err := clientTimeline(ctx, c)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Type == "client.task_awaiting_approval.v1" && e.Task == task {
				return nil
			}
		}
		return fmt.Errorf("client %s does not await approval of task %s", c, task)
	})
}

func neverStarted(ctx context.Context, c, task, again string) error {
	return holds(ctx, func() error {
		entries, err := clientTimeline(ctx, c)
		if err != nil {
			return err
		}
		n := 0
		for _, e := range entries {
			if e.Type == "client.task_started.v1" && e.Task == task {
				n++
			}
		}
		if want := map[bool]int{true: 1, false: 0}[again != ""]; n != want {
			return fmt.Errorf("client %s started task %s %d times, want %d", c, task, n, want)
		}
		return nil
	})
}

func clientEventsInOrder(ctx context.Context, c string, table *godog.Table) error {
	var want [][2]string
	for _, row := range table.Rows[1:] {
		want = append(want, [2]string{row.Cells[0].Value, row.Cells[1].Value})
	}
	return waitFor(ctx, func() error {
		entries, err := clientTimeline(ctx, c)
		if err != nil {
			return err
		}
		i := 0
		var seen []string
		for _, e := range entries {
			seen = append(seen, e.Type+" "+e.Task)
			if i < len(want) && e.Type == want[i][0] && e.Task == want[i][1] {
				i++
			}
		}
		if i < len(want) {
			return fmt.Errorf("events of %s do not contain %v in order:\n%s", c, want, strings.Join(seen, "\n"))
		}
		return nil
	})
}

// clientReportedRunning waits until the client process said "Started".
func clientReportedRunning(ctx context.Context, c, task string) error {
	return waitFor(ctx, func() error {
		entries, err := clientTimeline(ctx, c)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Type == events.ClientTaskRunningV1 && e.Task == task {
				return nil
			}
		}
		return fmt.Errorf("client %s has not reported task %s running", c, task)
	})
}

func touch(path string) error {
	return os.WriteFile(path, nil, 0o644)
}

func tellServer(ctx context.Context, task, what string) error {
	return touch(filepath.Join(w(ctx).dataDir(), "work", "tasks", "task_"+task, what))
}

func tellClient(ctx context.Context, task, c string) error {
	return touch(filepath.Join(w(ctx).dir, "agents", c, "tasks", "task_"+task, "finish"))
}

func triggerRan(ctx context.Context, name, task, kind, value string) error {
	return waitFor(ctx, func() error {
		r, err := w(ctx).api.Timeline(ctx, api.TimelineRequest{TimelineQuery: projections.TimelineQuery{Task: task, Limit: 10000}})
		if err != nil {
			return err
		}
		for _, e := range r.Entries {
			if e.Type != "task.trigger_ran.v1" || !strings.HasPrefix(e.Detail, name+" ") {
				continue
			}
			if kind == "exit code" && strings.HasPrefix(e.Detail, name+" exit "+value+" ") || kind == "error" && strings.Contains(e.Detail, value) {
				return nil
			}
			return fmt.Errorf("trigger ran: %q", e.Detail)
		}
		return fmt.Errorf("trigger %s of %s has not run", name, task)
	})
}

func triggerArgument(ctx context.Context, task, arg string) error {
	b, err := os.ReadFile(filepath.Join(w(ctx).dataDir(), "work", "tasks", "task_"+task, "trigger.out"))
	if err != nil {
		return err
	}
	if got := string(b); got != "1\n"+arg+"\n" {
		return fmt.Errorf("the trigger got argc/argv %q", got)
	}
	return nil
}
