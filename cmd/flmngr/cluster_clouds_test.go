package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/files"
	"github.com/flmngr/flmngr/services/testkit"
)

// spawnScript is a task server that notes every process spawned, then
// runs until the test lets it finish or it is stopped.
const spawnScript = `echo "$FLMNGR_TASK $FLMNGR_RUN $$" >> "$1"
echo '{"type":"info","info":"Started"}'
while [ ! -e "$2/finish-$FLMNGR_TASK-$FLMNGR_RUN" ]; do sleep 0.02; done
echo '{"type":"info","info":"Finished"}'
`

// TestTwoCloudsActOnEachStartOnce runs two `flmngr cloud --nats a,b,c
// --replicas 3` processes, each with its own views, against a three-node
// JetStream cluster, and starts three tasks four times each, letting runs
// finish or stopping them: every run gets exactly one server process and
// one "server started" event, whichever cloud acts on it.
func TestTwoCloudsActOnEachStartOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a NATS cluster and two flmngr processes")
	}
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cl := jstest.NewCluster(t, 3)
	dir := t.TempDir()
	for _, name := range []string{"cloud-a", "cloud-b"} {
		startCloudProcess(t, bin, cl.URLs(), filepath.Join(dir, name), name)
	}
	ctx := context.Background()
	nc := cl.Connect(t)
	op := api.NewClient(nc, 30*time.Second).WithSource("test")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	store, err := files.Attach(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	spawns, control := filepath.Join(dir, "spawns.log"), filepath.Join(dir, "control")
	if err := os.MkdirAll(control, 0o755); err != nil {
		t.Fatal(err)
	}
	tasks := []string{"t1", "t2", "t3"}
	for _, id := range tasks {
		if _, err := op.CreateTask(ctx, commands.CreateTask{TaskID: id, Host: "127.0.0.1", Port: 1,
			ServerCommand: []string{"sh", "server.sh", spawns, control}}); err != nil {
			t.Fatal(err)
		}
		ref, err := store.Put(ctx, id, "server.sh", strings.NewReader(spawnScript))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := op.RecordTaskFiles(ctx, commands.RecordTaskFiles{TaskID: id, Files: []events.FileRef{ref}}); err != nil {
			t.Fatal(err)
		}
	}
	requireReplicas(t, cl, 3)

	w := watchLog(t, cl)
	const runs = 4
	for n := 1; n <= runs; n++ {
		run := fmt.Sprint(n)
		for _, id := range tasks {
			if _, err := op.StartTask(ctx, commands.StartTask{TaskID: id}); err != nil {
				t.Fatal(err)
			}
		}
		for i, id := range tasks {
			w.await(t, "server of "+id+" run "+run, runEvent(id, run, events.TaskServerStartedV1))
			jstest.WaitFor(t, time.Minute, "the server process of "+id+" run "+run, func() bool {
				b, _ := os.ReadFile(spawns)
				return bytes.Contains(b, []byte(id+" "+run+" "))
			})
			if (n+i)%2 == 0 {
				if err := os.WriteFile(filepath.Join(control, "finish-"+id+"-"+run), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if _, err := op.StopTask(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		for i, id := range tasks {
			end := events.TaskStoppedV1
			if (n+i)%2 == 0 {
				end = events.TaskFinishedV1
			}
			w.await(t, id+" run "+run+" to end", runEvent(id, run, end))
			w.await(t, "server of "+id+" run "+run+" to exit", runEvent(id, run, events.TaskServerExitedV1))
		}
	}

	// Every run: one start request, one server started, one process.
	log, err := eventlog.Attach(ctx, nc, eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ task, run string }
	requested, started := map[key]int{}, map[key]int{}
	by := map[string]int{}
	_, err = log.Replay(ctx, eventlog.FollowOptions{}, func(e events.Envelope) error {
		switch p := e.Event.(type) {
		case *events.TaskStartRequested:
			requested[key{e.Aggregate.ID, p.Run}]++
		case *events.TaskServerStarted:
			started[key{e.Aggregate.ID, p.Run}]++
			by[p.Supervisor]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	spawned := map[key]int{}
	var pids []int
	b, err := os.ReadFile(spawns)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var k key
		var pid int
		if _, err := fmt.Sscanf(line, "%s %s %d", &k.task, &k.run, &pid); err != nil {
			t.Fatalf("spawn log line %q: %v", line, err)
		}
		spawned[k]++
		pids = append(pids, pid)
	}
	for _, id := range tasks {
		for n := 1; n <= runs; n++ {
			k := key{id, fmt.Sprint(n)}
			if requested[k] != 1 || started[k] != 1 || spawned[k] != 1 {
				t.Errorf("task %s run %s: %d start requests, %d server started events, %d processes spawned; want 1 each",
					k.task, k.run, requested[k], started[k], spawned[k])
			}
		}
	}
	if len(started) != len(tasks)*runs || len(spawned) != len(tasks)*runs {
		t.Errorf("%d runs started, %d spawned; want %d", len(started), len(spawned), len(tasks)*runs)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("server process %d is still there (%v)", pid, err)
		}
	}
	t.Logf("%d runs of %d tasks, each started once by one of the clouds: %v", len(started), len(tasks), by)
}

func runEvent(task, run, typ string) func(events.Envelope) bool {
	return func(e events.Envelope) bool {
		if e.Aggregate.ID != task || e.Type != typ {
			return false
		}
		switch p := e.Event.(type) {
		case *events.TaskServerStarted:
			return p.Run == run
		case *events.TaskServerExited:
			return p.Run == run
		case *events.TaskFinished:
			return p.Run == run
		case *events.TaskStopped:
			return p.Run == run
		}
		return false
	}
}

// startCloudProcess runs `flmngr cloud` against a NATS deployment and
// returns once it is up; it gets SIGTERM at the end of the test, and its
// log is shown when the test failed.
func startCloudProcess(t *testing.T, bin, urls, data, name string) {
	t.Helper()
	cmd := exec.Command(bin, "cloud", "--nats", urls, "--auth=false", "--replicas", "3", "--data", data, "--name", name,
		"--http", "", "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuf
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	up := make(chan bool, 2)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Stop with Ctrl-C") {
				up <- true
			}
		}
		up <- false
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not stop within 30s of SIGTERM", name)
		}
		if t.Failed() {
			t.Logf("%s's log:\n%s", name, stderr.String())
		}
	})
	select {
	case ok := <-up:
		if !ok {
			t.Fatalf("%s exited before it was up:\n%s", name, stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s is not up after a minute:\n%s", name, stderr.String())
	}
}
