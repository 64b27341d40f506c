package flowerapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/api"
)

// reportedKeys are the SuperNode public keys the clients reported for a
// task run, by client.
func (d *deployment) reportedKeys(t *testing.T, ctx context.Context, task, run string) map[string]string {
	t.Helper()
	evs, _, err := d.api.Events(ctx, api.EventsRequest{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range evs {
		if p, ok := e.Event.(*events.ClientSuperNodeKeyReported); ok && p.TaskID == task && p.Run == run {
			out[e.Aggregate.ID] = p.PublicKey
		}
	}
	return out
}

// fakeNodes are the SuperNodes the task's (fake) SuperLink has
// registered: key → status.
func (d *deployment) fakeNodes(t *testing.T, task string) map[string]string {
	t.Helper()
	var nodes []struct{ Key, Status string }
	b, err := os.ReadFile(filepath.Join(d.dir, "cloud", "work", "flower", "task_"+task, "state.db.nodes.json"))
	if err != nil {
		return nil
	}
	if err := json.Unmarshal(b, &nodes); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range nodes {
		out[n.Key] = n.Status
	}
	return out
}

// TestFlowerAppRegistersOnlyMatchedClients: each matched client makes its
// SuperNode key pair and reports the public key; the cloud registers
// exactly those keys with the SuperLink (TLS, authentication on); the
// client that does not match reports none and none is registered for it;
// a client's private key is nowhere but in its own work directory.
func TestFlowerAppRegistersOnlyMatchedClients(t *testing.T) {
	state := useFakeFlower(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	d := deploy(t, ctx)
	d.createApp(t, ctx, "linreg", "--run-config num-server-rounds=2 --poll 100ms")
	if _, err := d.api.StartTask(ctx, commands.StartTask{TaskID: "linreg"}); err != nil {
		t.Fatal(err)
	}
	task := d.waitTask(t, ctx, "linreg", "the run ends", func(x api.Task) bool { return !x.Status.Busy() })
	if task.Status != commands.StatusFinished {
		t.Fatalf("the run ended %s: %s", task.Status, task.LastError)
	}
	d.privateKeysStayHome(t, ctx, "linreg", "site-1", "site-2")
	keys := d.reportedKeys(t, ctx, "linreg", "1")
	if len(keys) != 2 || keys["site-1"] == "" || keys["site-2"] == "" || keys["site-1"] == keys["site-2"] {
		t.Fatalf("SuperNode keys reported: %q", keys)
	}
	registered := d.fakeNodes(t, "linreg")
	if len(registered) != 2 || registered[keys["site-1"]] == "" || registered[keys["site-2"]] == "" {
		t.Fatalf("the SuperLink registered %v, want the keys of site-1 and site-2 %q", registered, keys)
	}
	if regs := calls(state, "flwr supernode register"); len(regs) != 2 {
		t.Fatalf("flwr supernode register calls: %q", regs)
	}
	steps := strings.Join(d.steps(t, ctx, "linreg", "1"), "\n")
	for _, want := range []string{"supernode_registered client site-1 node ", "supernode_registered client site-2 node "} {
		if !strings.Contains(steps, want) {
			t.Errorf("no step %q: %s", want, steps)
		}
	}
	if strings.Contains(steps, "site-3") {
		t.Errorf("site-3 is on the run's steps: %s", steps)
	}
	if ty := d.clientTypes(t, ctx, "site-3", "linreg"); len(ty) != 0 {
		t.Errorf("site-3 did something for the task: %q", ty)
	}
	// The SuperLink ran with TLS and authentication; the SuperNodes with
	// the CA and their own key.
	sl := calls(state, "flower-superlink")
	if len(sl) == 0 || strings.Contains(sl[0], "--insecure") || !strings.Contains(sl[0], "--enable-supernode-auth") {
		t.Fatalf("superlink command lines: %q", sl)
	}
	for _, c := range calls(state, "flower-supernode") {
		if strings.Contains(c, "--insecure") || !strings.Contains(c, "--root-certificates") || !strings.Contains(c, "--auth-supernode-private-key") {
			t.Fatalf("supernode command line: %q", c)
		}
	}

	// The cloud's own keys are its own: 0600.
	fi, err := os.Stat(filepath.Join(d.dir, "cloud", "work", "flower", "task_linreg", "tls", "server.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the SuperLink's key: %v %v", fi, err)
	}
}

// TestFlowerAppUnregistersClientThatStopsMatching: a client that stops
// matching during the run is unregistered from the SuperLink and its
// agent stops its SuperNode; the run goes on with the others.
func TestFlowerAppUnregistersClientThatStopsMatching(t *testing.T) {
	state := useFakeFlower(t)
	t.Setenv("FAKE_FLOWER_ROUND_MS", "60000")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := deploy(t, ctx)
	d.createApp(t, ctx, "linreg", "--poll 100ms")
	if _, err := d.api.StartTask(ctx, commands.StartTask{TaskID: "linreg"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "both SuperNodes online", func() bool {
		st := d.fakeNodes(t, "linreg")
		on := 0
		for _, s := range st {
			if s == "online" {
				on++
			}
		}
		return on == 2
	})
	keys := d.reportedKeys(t, ctx, "linreg", "1")
	writeSensors(t, filepath.Join(d.dir, "site-2.json"), "lidar")
	waitFor(t, time.Minute, "site-2 unregistered", func() bool { return d.fakeNodes(t, "linreg")[keys["site-2"]] == "unregistered" })
	waitFor(t, time.Minute, "site-2's SuperNode stopped", func() bool {
		return contains(d.clientTypes(t, ctx, "site-2", "linreg"), events.ClientTaskStoppedV1)
	})
	waitFor(t, time.Minute, "a supernode_unregistered step for site-2", func() bool {
		return contains(d.steps(t, ctx, "linreg", "1"), "supernode_unregistered client site-2 node ")
	})
	if un := calls(state, "flwr supernode unregister"); len(un) != 1 {
		t.Fatalf("flwr supernode unregister calls: %q", un)
	}
	if st := d.fakeNodes(t, "linreg")[keys["site-1"]]; st != "online" {
		t.Fatalf("site-1's SuperNode is %s, want online", st)
	}
	task, _ := d.api.Task(ctx, "linreg")
	if task.Status != commands.StatusRunning {
		t.Fatalf("the run is %s after a client left: %s", task.Status, task.LastError)
	}
	if _, err := d.api.StopTask(ctx, "linreg"); err != nil {
		t.Fatal(err)
	}
	d.waitTask(t, ctx, "linreg", "the run stopped", func(x api.Task) bool { return !x.Status.Busy() })
}

// privateKeysStayHome checks the sites' SuperNode private keys: 0600 in
// the client's work directory, and in no event, view or file of the
// cloud.
func (d *deployment) privateKeysStayHome(t *testing.T, ctx context.Context, task string, sites ...string) {
	t.Helper()
	evs, _, err := d.api.Events(ctx, api.EventsRequest{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	for _, e := range evs {
		stream.Write(e.Payload)
	}
	tv, _ := d.api.Task(ctx, task)
	for _, site := range sites {
		file := filepath.Join(d.dir, site, "flower", "task_"+task, "supernode.key")
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", file, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(file)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		secret := []byte(strings.Join(lines[1:len(lines)-1], ""))
		if len(secret) < 100 {
			t.Fatalf("%s does not look like an OpenSSH private key:\n%s", file, b)
		}
		chunks := [][]byte{[]byte("PRIVATE KEY"), secret[:40], secret[len(secret)-40:]}
		uv, _ := d.api.User(ctx, site)
		views, _ := json.Marshal([]any{tv, uv})
		for _, c := range chunks {
			if bytes.Contains(stream.Bytes(), c) || bytes.Contains(views, c) {
				t.Fatalf("%s's private key (%q) is in the event stream or the views", site, c)
			}
		}
		err = filepath.WalkDir(filepath.Join(d.dir, "cloud"), func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			for _, c := range chunks[1:] {
				if bytes.Contains(b, c) {
					t.Errorf("%s's private key is in the cloud's %s", site, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlowerAppUnregistersQuarantinedClient: a client whose SuperNode
// keeps failing quarantines the run; the cloud then unregisters its key
// and the run goes on without it.
func TestFlowerAppUnregistersQuarantinedClient(t *testing.T) {
	state := useFakeFlower(t)
	t.Setenv("FAKE_FLOWER_ROUND_MS", "60000")
	t.Setenv("FAKE_FLOWER_MIN_NODES", "1")
	t.Setenv("FAKE_FLOWER_REFUSE", "site-2")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d := deploy(t, ctx)
	d.createApp(t, ctx, "linreg", "--poll 100ms")
	if _, err := d.api.UpdateTask(ctx, commands.UpdateTask{TaskID: "linreg", ClientCommand: &[]string{"{flmngr}", "flower", "supernode",
		"--superlink", "{host}:{port}", "--client", "{client}", "--state", "{workdir}/flower/task_{task}", "--fast-failures", "2", "--admit-wait", "1s"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.api.StartTask(ctx, commands.StartTask{TaskID: "linreg"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "site-2 quarantined", func() bool {
		return contains(d.clientTypes(t, ctx, "site-2", "linreg"), events.ClientTaskQuarantinedV1)
	})
	waitFor(t, time.Minute, "site-2 unregistered", func() bool {
		return contains(d.steps(t, ctx, "linreg", "1"), "supernode_unregistered client site-2 node ")
	})
	keys := d.reportedKeys(t, ctx, "linreg", "1")
	if st := d.fakeNodes(t, "linreg")[keys["site-2"]]; st != "unregistered" {
		t.Fatalf("site-2's node is %q, want unregistered", st)
	}
	if un := calls(state, "flwr supernode unregister"); len(un) != 1 {
		t.Fatalf("flwr supernode unregister calls: %q", un)
	}
	if task, _ := d.api.Task(ctx, "linreg"); task.Status != commands.StatusRunning {
		t.Fatalf("the run is %s after a client was quarantined: %s", task.Status, task.LastError)
	}
	if _, err := d.api.StopTask(ctx, "linreg"); err != nil {
		t.Fatal(err)
	}
	d.waitTask(t, ctx, "linreg", "the run stopped", func(x api.Task) bool { return !x.Status.Busy() })
}
