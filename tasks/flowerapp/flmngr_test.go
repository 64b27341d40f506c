package flowerapp_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/agent"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/testkit"
)

// deployment is a cloud and three agents: site-1 and site-2 have a
// camera, site-3 a lidar.
type deployment struct {
	cloud *cloud.Cloud
	api   *api.Client
	dir   string
}

func deploy(t *testing.T, ctx context.Context) *deployment {
	t.Helper()
	dir := t.TempDir()
	c, err := cloud.Open(ctx, cloud.Config{DataDir: filepath.Join(dir, "cloud"), Listen: "127.0.0.1:0", Name: "flower-app"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	for _, id := range []string{"site-1", "site-2", "site-3"} {
		nc, err := c.ConnectClient(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sensors := []string{"camera"}
		if id == "site-3" {
			sensors = []string{"lidar"}
		}
		// Its attributes file: a test changes what it reports.
		info := filepath.Join(dir, id+".json")
		writeSensors(t, info, sensors...)
		a, err := agent.New(nc, agent.Config{ClientID: id, Info: commands.ClientInfo{Sensors: &sensors}, InfoFile: info, WorkDir: filepath.Join(dir, id)})
		if err != nil {
			t.Fatal(err)
		}
		actx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = a.Run(actx); close(done) }()
		t.Cleanup(func() { stop(); <-done })
	}
	return &deployment{cloud: c, api: api.NewClient(c.Conn(), time.Minute), dir: dir}
}

// writeSensors writes an agent's attributes file.
func writeSensors(t *testing.T, file string, sensors ...string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"sensors": sensors})
	if err := os.WriteFile(file+".tmp", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
}

// freePorts returns a port whose next two ports are free as well (the
// SuperLink's Fleet, ServerAppIo and Control APIs).
func freePorts(t *testing.T) int {
	t.Helper()
	for range 50 {
		p := testkit.FreePort(t)
		ok := p+2 < 65536
		for i := 1; ok && i <= 2; i++ {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no three free ports in a row")
	return 0
}

// createApp registers the sample Flower App as a task of kind flower-app
// selecting the clients with a camera, and uploads its files.
func (d *deployment) createApp(t *testing.T, ctx context.Context, id, serverArgs string) {
	t.Helper()
	if _, err := d.api.CreateTask(ctx, commands.CreateTask{TaskID: id, Kind: commands.KindFlowerApp, Host: "127.0.0.1", Port: freePorts(t),
		SelectionCriteria: `"camera" in sensors`, ServerArguments: serverArgs, Tags: []string{"flower-app"}}); err != nil {
		t.Fatal(err)
	}
	var refs []events.FileRef
	err := filepath.WalkDir("app", func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() || strings.Contains(p, "__pycache__") {
			return err
		}
		name, _ := filepath.Rel("app", p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		ref, err := d.cloud.Files.Put(ctx, id, filepath.ToSlash(name), f)
		refs = append(refs, ref)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.api.RecordTaskFiles(ctx, commands.RecordTaskFiles{TaskID: id, Files: refs}); err != nil {
		t.Fatal(err)
	}
}

// waitTask polls the task until cond holds.
func (d *deployment) waitTask(t *testing.T, ctx context.Context, id, what string, cond func(api.Task) bool) api.Task {
	t.Helper()
	for {
		task, err := d.api.Task(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(task) {
			return task
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("task %s: %s did not happen in time (status %s round %d: %s)", id, what, task.Status, task.Round, task.LastError)
		}
	}
}

// steps lists the task's step events of a run as "step detail".
func (d *deployment) steps(t *testing.T, ctx context.Context, id, run string) []string {
	t.Helper()
	evs, _, err := d.api.Events(ctx, api.EventsRequest{Task: id, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if s, ok := e.Event.(*events.TaskStepReported); ok && s.Run == run {
			out = append(out, strings.TrimSpace(s.Step+" "+s.Detail))
		}
	}
	return out
}

// clientTypes lists the event types of a client about a task.
func (d *deployment) clientTypes(t *testing.T, ctx context.Context, client, task string) []string {
	t.Helper()
	evs, _, err := d.api.Events(ctx, api.EventsRequest{Client: client, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		if strings.Contains(string(e.Payload), `"task_id":"`+task+`"`) {
			out = append(out, e.Type)
		}
	}
	return out
}

func contains(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// TestFlowerAppUnderFlmngr runs a Flower App task through flmngr against
// the fake Flower: the cloud's SuperLink, SuperNodes on the two clients
// the criterion selects and none on the third, the rounds and steps on
// the timeline, then a second run stopped mid-run with `task stop`.
func TestFlowerAppUnderFlmngr(t *testing.T) {
	state := useFakeFlower(t)
	t.Setenv("FAKE_FLOWER_ROUND_MS", "1500")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := deploy(t, ctx)
	d.createApp(t, ctx, "linreg", "--run-config num-server-rounds=3 --poll 100ms")
	if _, err := d.api.StartTask(ctx, commands.StartTask{TaskID: "linreg"}); err != nil {
		t.Fatal(err)
	}
	task := d.waitTask(t, ctx, "linreg", "the run ends", func(x api.Task) bool { return !x.Status.Busy() })
	if task.Status != commands.StatusFinished || task.Round != 3 || task.Metrics["eval_mse"] != 0.5 {
		t.Fatalf("the Flower App ended %s after round %d (%v): %s", task.Status, task.Round, task.Metrics, task.LastError)
	}
	steps := d.steps(t, ctx, "linreg", "1")
	for _, want := range []string{"superlink_started", "run_submitted run ", "run_status running", "run_status finished:completed", "log_recorded"} {
		if !contains(steps, want) {
			t.Errorf("no step %q on the timeline: %q", want, steps)
		}
	}
	nodes := calls(state, "flower-supernode")
	for _, c := range nodes {
		if strings.Contains(c, `"site-3"`) {
			t.Fatalf("site-3 does not match and ran a SuperNode: %s", c)
		}
	}
	if !contains(nodes, "flower-supernode") || !strings.Contains(strings.Join(nodes, "\n"), `flmngr-client-id="site-1"`) || !strings.Contains(strings.Join(nodes, "\n"), `flmngr-client-id="site-2"`) {
		t.Fatalf("SuperNodes started: %q", nodes)
	}
	for _, site := range []string{"site-1", "site-2"} {
		if ty := d.clientTypes(t, ctx, site, "linreg"); !contains(ty, events.ClientTaskRunningV1) {
			t.Errorf("%s: no running SuperNode on the timeline: %q", site, ty)
		}
	}
	if ty := d.clientTypes(t, ctx, "site-3", "linreg"); contains(ty, events.ClientTaskStartedV1) {
		t.Errorf("site-3 started the task: %q", ty)
	}

	// A second run, stopped mid-run: `flwr stop`, then the SuperLink,
	// however long flwr takes to start.
	t.Setenv("FAKE_FLOWER_ROUND_MS", "60000")
	t.Setenv("FAKE_FLOWER_STOP_MS", "7000")
	if _, err := d.api.StartTask(ctx, commands.StartTask{TaskID: "linreg"}); err != nil {
		t.Fatal(err)
	}
	d.waitTask(t, ctx, "linreg", "run 2 running", func(x api.Task) bool {
		return x.Run == "2" && contains(d.steps(t, ctx, "linreg", "2"), "run_status running")
	})
	if _, err := d.api.StopTask(ctx, "linreg"); err != nil {
		t.Fatal(err)
	}
	task = d.waitTask(t, ctx, "linreg", "run 2 stopped", func(x api.Task) bool { return !x.Status.Busy() })
	if task.Status != commands.StatusStopped {
		t.Fatalf("run 2 ended %s, want stopped: %s", task.Status, task.LastError)
	}
	if stops := calls(state, "flwr stop"); len(stops) != 1 {
		t.Fatalf("flwr stop calls: %q", stops)
	}
	if !contains(d.steps(t, ctx, "linreg", "2"), "run_stopped") {
		t.Fatalf("no run_stopped step: %q", d.steps(t, ctx, "linreg", "2"))
	}
}

// TestFlowerAppFailsOver: a run that fails is recorded errored with
// Flower's status; a SuperNode its SuperLink refuses fails the client's
// run, which is quarantined.
func TestFlowerAppFailsOver(t *testing.T) {
	useFakeFlower(t)
	t.Setenv("FAKE_FLOWER_FAIL", "1")
	t.Setenv("FAKE_FLOWER_REFUSE", "site-2")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := deploy(t, ctx)
	d.createApp(t, ctx, "broken", "--poll 100ms")
	if _, err := d.api.UpdateTask(ctx, commands.UpdateTask{TaskID: "broken", ClientCommand: &[]string{"{flmngr}", "flower", "supernode",
		"--superlink", "{host}:{port}", "--client", "{client}", "--state", "{workdir}/flower/task_{task}", "--fast-failures", "2", "--admit-wait", "1s"}}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FAKE_FLOWER_MIN_NODES", "1")
	if _, err := d.api.StartTask(ctx, commands.StartTask{TaskID: "broken"}); err != nil {
		t.Fatal(err)
	}
	task := d.waitTask(t, ctx, "broken", "the run ends", func(x api.Task) bool { return !x.Status.Busy() })
	if task.Status != commands.StatusErrored || !strings.Contains(task.LastError, "finished:failed") {
		t.Fatalf("the failing app ended %s: %q", task.Status, task.LastError)
	}
	waitFor(t, time.Minute, "site-2 quarantined", func() bool {
		return contains(d.clientTypes(t, ctx, "site-2", "broken"), events.ClientTaskQuarantinedV1)
	})
}

// TestFlowerAppWithRealFlower runs the sample app with real Flower
// through flmngr: three rounds to finished:completed. It needs Flower
// 1.2x on PATH (flower-superlink, flower-supernode, flwr) with numpy.
func TestFlowerAppWithRealFlower(t *testing.T) {
	for _, cmd := range []string{"flower-superlink", "flower-supernode", "flower-superexec", "flwr", "flwr-serverapp", "flwr-clientapp"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("skipping the real Flower run: %s is not on PATH (install Flower 1.2x with numpy, e.g. `pip install flwr numpy`)", cmd)
		}
	}
	if out, err := exec.Command("python3", "-c", "import flwr, numpy").CombinedOutput(); err != nil {
		t.Skipf("skipping the real Flower run: `import flwr, numpy` fails: %s", strings.TrimSpace(string(out)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d := deploy(t, ctx)
	d.createApp(t, ctx, "linreg", "--run-config num-server-rounds=3")
	start := time.Now()
	if _, err := d.api.StartTask(ctx, commands.StartTask{TaskID: "linreg"}); err != nil {
		t.Fatal(err)
	}
	task := d.waitTask(t, ctx, "linreg", "the run ends", func(x api.Task) bool { return !x.Status.Busy() })
	total := time.Since(start)
	if task.Status != commands.StatusFinished || task.Round != 3 {
		t.Fatalf("the Flower App ended %s after round %d: %s", task.Status, task.Round, task.LastError)
	}
	t.Logf("real Flower: %s after round %d in %s, metrics %v", task.Status, task.Round, total.Round(time.Millisecond), task.Metrics)
	steps := d.steps(t, ctx, "linreg", "1")
	for _, s := range steps {
		t.Log("step:", s)
	}
	if ty := d.clientTypes(t, ctx, "site-3", "linreg"); contains(ty, events.ClientTaskStartedV1) {
		t.Errorf("site-3 started the task: %q", ty)
	}
	if keys := d.reportedKeys(t, ctx, "linreg", "1"); len(keys) != 2 || keys["site-3"] != "" {
		t.Errorf("SuperNode keys reported: %q", keys)
	}
	for _, site := range []string{"site-1", "site-2"} {
		if !contains(steps, "supernode_registered client "+site+" node ") {
			t.Errorf("%s's SuperNode was not registered", site)
		}
	}
}
