package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/testkit"
	"github.com/flmngr/flmngr/tasks/fedavg"
)

// natsServerOnce builds the real nats-server, the version go.mod pins,
// from the module cache: no download.
var natsServerOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "nats-server-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "nats-server")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build nats-server: %v\n%s", err, out)
	}
	return bin, nil
})

// realNode is one nats-server process of a realCluster.
type realNode struct {
	name, conf, url, routeURL string
	cmd                       *exec.Cmd
	out                       *syncBuf
	exited                    chan struct{}
	killed                    *atomic.Bool // by the test, not by itself
}

// realCluster is three nats-server processes configured by flmngr
// cluster-config, and flmngr processes against them.
type realCluster struct {
	t          *testing.T
	bin, nats  string
	dir, data  string
	nodes      []*realNode
	cloud      *exec.Cmd
	cloudOut   *syncBuf
	cloudDone  chan struct{} // closed when the cloud process exited
	agents     map[string]*exec.Cmd
	agentOut   map[string]*syncBuf
	op         *api.Client
	opConn     *nats.Conn
	adminCreds auth.Creds
}

// portOf is a free port, as text.
func portOf(t *testing.T) string {
	t.Helper()
	_, port, _ := strings.Cut(testkit.FreeAddr(t), ":")
	return port
}

func newRealCluster(t *testing.T) *realCluster {
	t.Helper()
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	nb, err := natsServerOnce()
	if err != nil {
		t.Fatal(err)
	}
	c := &realCluster{t: t, bin: bin, nats: nb, dir: t.TempDir(), agents: map[string]*exec.Cmd{}, agentOut: map[string]*syncBuf{}}
	c.data = filepath.Join(c.dir, "cloud")
	ports := testkit.FreePorts(t, 6)
	for i := 1; i <= 3; i++ {
		n := &realNode{name: fmt.Sprintf("n%d", i), url: fmt.Sprintf("nats://127.0.0.1:%d", ports[2*i-2]), routeURL: fmt.Sprintf("nats://127.0.0.1:%d", ports[2*i-1])}
		n.conf = filepath.Join(c.dir, n.name+".conf")
		c.nodes = append(c.nodes, n)
	}
	for _, n := range c.nodes {
		var routes []string
		for _, o := range c.nodes {
			if o != n {
				routes = append(routes, o.routeURL)
			}
		}
		out, err := exec.Command(bin, "cluster-config", "--data", c.data, "--name", n.name, "--listen", strings.TrimPrefix(n.url, "nats://"),
			"--cluster-listen", strings.TrimPrefix(n.routeURL, "nats://"), "--routes", strings.Join(routes, ","),
			"--store", filepath.Join(c.dir, n.name, "jetstream"), "--jwt-dir", filepath.Join(c.dir, n.name, "jwt"), "--out", n.conf).CombinedOutput()
		if err != nil {
			t.Fatalf("cluster-config: %v\n%s", err, out)
		}
	}
	for i := range c.nodes {
		c.startNode(i)
	}
	trust, _, err := auth.LoadOrCreateTrust(auth.KeysFile(c.data))
	if err != nil {
		t.Fatal(err)
	}
	if c.adminCreds, err = trust.NewUser(auth.RoleAdmin, "test-admin"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for id := range c.agents {
			c.stopAgent(id)
		}
		if c.opConn != nil {
			c.opConn.Close()
		}
		if c.cloud != nil {
			sig := syscall.SIGTERM
			if t.Failed() {
				// The Go runtime prints every goroutine's stack and
				// exits: what the cloud was doing when the test failed.
				sig = syscall.SIGQUIT
			}
			_ = c.cloud.Process.Signal(sig)
			select {
			case <-c.cloudDone:
			case <-time.After(60 * time.Second):
				_ = c.cloud.Process.Kill()
				t.Errorf("flmngr cloud did not stop within 60 s of SIGTERM")
			}
		}
		for i := range c.nodes {
			c.killNode(i)
		}
		if t.Failed() {
			t.Logf("--- cloud:\n%s", c.cloudOut.String())
			for id, out := range c.agentOut {
				t.Logf("--- agent %s:\n%s", id, out.String())
			}
		}
	})
	return c
}

func (c *realCluster) urls() string {
	var u []string
	for _, n := range c.nodes {
		u = append(u, n.url)
	}
	return strings.Join(u, ",")
}

func (c *realCluster) startNode(i int) {
	c.t.Helper()
	n := c.nodes[i]
	n.out, n.killed, n.exited = &syncBuf{}, &atomic.Bool{}, make(chan struct{})
	n.cmd = exec.Command(c.nats, "-c", n.conf)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	cmd, out, exited, killed, name := n.cmd, n.out, n.exited, n.killed, n.name
	go func() {
		_ = cmd.Wait()
		close(exited)
		if !killed.Load() {
			c.t.Errorf("nats-server %s exited by itself:\n%s", name, out.String())
		}
	}()
	waitUntil(c.t, "nats-server "+n.name, 20*time.Second, func() error {
		nc, err := net.DialTimeout("tcp", strings.TrimPrefix(n.url, "nats://"), 200*time.Millisecond)
		if err != nil {
			return err
		}
		return nc.Close()
	})
}

func (c *realCluster) killNode(i int) {
	n := c.nodes[i]
	if n.cmd == nil {
		return
	}
	n.killed.Store(true)
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// startCloud runs flmngr cloud against the three nodes and connects an
// operator.
func (c *realCluster) startCloud() {
	c.t.Helper()
	c.cloudOut = &syncBuf{}
	c.cloud = exec.Command(c.bin, "cloud", "--nats", c.urls(), "--replicas", "3", "--data", c.data, "--name", "cloud-1", "--http", "", "--log-level", "info")
	c.cloud.Stdout, c.cloud.Stderr = c.cloudOut, c.cloudOut
	if err := c.cloud.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.cloudDone = make(chan struct{})
	go func() { _ = c.cloud.Wait(); close(c.cloudDone) }()
	waitUntil(c.t, "flmngr cloud", 90*time.Second, func() error {
		select {
		case <-c.cloudDone:
			c.t.Fatalf("flmngr cloud exited: %s", c.cloudOut.String())
		default:
		}
		if !strings.Contains(c.cloudOut.String(), "Stop with Ctrl-C") {
			return fmt.Errorf("not up yet")
		}
		return nil
	})
	opts, err := auth.OperatorOptions(filepath.Join(c.data, "operator.creds"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.opConn, err = nats.Connect(c.urls(), append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.op = api.NewClient(c.opConn, 10*time.Second).WithSource("test")
}

// cli runs the CLI as the operator against the cluster.
func (c *realCluster) cli(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), "FLMNGR_NATS="+c.urls(), "FLMNGR_CREDS="+filepath.Join(c.data, "operator.creds"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("flmngr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startAgent gives client id its credentials with the CLI and runs its
// agent against the cluster.
func (c *realCluster) startAgent(id string) {
	c.t.Helper()
	creds := filepath.Join(c.dir, id+".creds")
	if _, err := os.Stat(creds); err != nil {
		c.cli("client-credentials", "create", id, "--out", creds)
	}
	c.agentOut[id] = &syncBuf{}
	cmd := exec.Command(c.bin, "client", "--id", id, "--sensors", "camera", "--data-qnt", "30000", "--nats", c.urls(), "--creds", creds,
		"--workdir", filepath.Join(c.dir, "agents", id), "--grace", "2s")
	cmd.Stdout, cmd.Stderr = c.agentOut[id], c.agentOut[id]
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.agents[id] = cmd
}

func (c *realCluster) stopAgent(id string) {
	cmd := c.agents[id]
	if cmd == nil || cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

// admin connects with every right, as only the cloud could.
func (c *realCluster) admin() *nats.Conn {
	c.t.Helper()
	nc, err := nats.Connect(c.urls(), c.adminCreds.Option(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// streamLeader is the index of the node leading a stream.
func (c *realCluster) streamLeader(nc *nats.Conn, stream string) int {
	c.t.Helper()
	var idx int
	waitUntil(c.t, "a leader of "+stream, 30*time.Second, func() error {
		msg, err := nc.Request("$JS.API.STREAM.INFO."+stream, nil, 2*time.Second)
		if err != nil {
			return err
		}
		var info struct {
			Cluster struct {
				Leader string `json:"leader"`
			} `json:"cluster"`
		}
		if err := json.Unmarshal(msg.Data, &info); err != nil {
			return err
		}
		for i, n := range c.nodes {
			if n.name == info.Cluster.Leader {
				idx = i
				return nil
			}
		}
		return fmt.Errorf("no leader (%q)", info.Cluster.Leader)
	})
	return idx
}

// events reads the whole event stream.
func (c *realCluster) events(nc *nats.Conn) []events.Envelope {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log, err := eventlog.Attach(ctx, nc, eventlog.Config{})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []events.Envelope
	// A consumer placed on a replica that just rejoined waits for it to
	// catch up: read again until a read goes through.
	waitUntil(c.t, "reading the event stream", time.Minute, func() error {
		out = out[:0]
		_, err := log.Replay(ctx, eventlog.FollowOptions{}, func(e events.Envelope) error { out = append(out, e); return nil })
		return err
	})
	return out
}

func waitUntil(t *testing.T, what string, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRealClusterLeaderKillMidRun runs FedAvg for 8 rounds on three real
// nats-server processes, kills the event stream's leader after round 2 and
// checks that the run finishes with every round: the supervisor reads its
// server's output at full speed and records it once the stream has a
// leader again. FLMNGR_LEADER_KILLS=10 repeats it (the figures are
// logged).
func TestRealClusterLeaderKillMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs three nats-server processes and FedAvg")
	}
	kills := 1
	if n, err := fmt.Sscan(os.Getenv("FLMNGR_LEADER_KILLS"), &kills); n != 1 || err != nil {
		kills = 1
	}
	ctx := context.Background()
	c := newRealCluster(t)
	c.startCloud()
	for _, id := range []string{"site-1", "site-2"} {
		c.startAgent(id)
	}
	waitUntil(t, "two clients", 30*time.Second, func() error {
		us, err := c.op.Users(ctx)
		if err != nil || len(us) != 2 {
			return fmt.Errorf("%d clients (%v)", len(us), err)
		}
		return nil
	})
	conf := filepath.Join(c.dir, "fedavg.json")
	settings := fedavg.DefaultConfig()
	settings.Trigger = fedavg.NotifyTrigger
	if err := os.WriteFile(conf, settings.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	c.cli("task", "create", "fedavg", "--host", "127.0.0.1", "--port", portOf(t), "--criterion", `"camera" in sensors`,
		"--server-cmd", c.bin+" fl server --listen {host}:{port} --config fedavg.json", "--client-cmd", c.bin+" fl client --server {host}:{port} --config fedavg.json",
		"--server-args", "--min-clients 2 --rounds 8", "--client-args", "--partitions 2", "--files", "fedavg.json")
	c.cli("task", "upload", "fedavg", conf)
	admin := c.admin()
	finished := 0
	for k := 1; k <= kills; k++ {
		r, err := c.op.StartTask(ctx, startTask("fedavg"))
		if err != nil {
			t.Fatal(err)
		}
		task, _ := c.op.Task(ctx, "fedavg")
		run := task.Run
		waitUntil(t, "round 2 of run "+run, 2*time.Minute, func() error {
			task, err := c.op.Task(ctx, "fedavg")
			if err != nil || task.Run != run || task.Round < 2 {
				return fmt.Errorf("run %s round %d (%v)", task.Run, task.Round, err)
			}
			return nil
		})
		leader := c.streamLeader(admin, "FLMNGR_EVENTS")
		killed := time.Now()
		c.killNode(leader)
		// How long commands and views pause, both measured from the kill.
		var commands, views time.Duration
		var measured sync.WaitGroup
		measured.Go(func() {
			commands = timeUntil(func() error {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				_, err := c.op.UpdateTask(cctx, updateTags("fedavg", fmt.Sprintf("kill-%d", k)))
				return err
			})
		})
		measured.Go(func() {
			views = timeUntil(func() error {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				_, err := c.op.Task(cctx, "fedavg")
				return err
			})
		})
		measured.Wait()
		var ended api.Task
		waitUntil(t, "run "+run+" to end", 3*time.Minute, func() error {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			task, err := c.op.Task(cctx, "fedavg")
			if err != nil || task.Run != run || task.Status.Busy() {
				return fmt.Errorf("run %s is %s (%v)", task.Run, task.Status, err)
			}
			ended = task
			return nil
		})
		c.startNode(leader)
		rounds := map[int]int{}
		for _, e := range c.events(admin) {
			if p, ok := e.Event.(*events.TaskRoundCompleted); ok && p.Run == run {
				rounds[p.Round]++
			}
		}
		all := len(rounds) == 8
		for _, n := range rounds {
			all = all && n == 1
		}
		if ended.Status == "finished" && all {
			finished++
		}
		t.Logf("kill %d: node %s (the stream leader) killed after round 2 of run %s (start at event %d); commands paused %s, views %s; the run ended %s with rounds %v (%s)",
			k, c.nodes[leader].name, run, r.Seq, ms(commands), ms(views), ended.Status, rounds, ended.LastError)
		_ = killed
		// Let the restarted node catch up before the next kill.
		waitUntil(t, "the cluster to have three replicas current", time.Minute, func() error { return replicasCurrent(admin, "FLMNGR_EVENTS") })
	}
	t.Logf("%d of %d runs finished with every round after the stream leader was killed mid-run", finished, kills)
	if finished != kills {
		t.Fatalf("%d of %d runs finished with every round", finished, kills)
	}
}

// timeUntil calls fn until it succeeds and returns how long that took.
func timeUntil(fn func() error) time.Duration {
	start := time.Now()
	for fn() != nil && time.Since(start) < 2*time.Minute {
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// replicasCurrent reports whether every replica of a stream is current.
func replicasCurrent(nc *nats.Conn, stream string) error {
	msg, err := nc.Request("$JS.API.STREAM.INFO."+stream, nil, 2*time.Second)
	if err != nil {
		return err
	}
	var info struct {
		Cluster struct {
			Leader   string `json:"leader"`
			Replicas []struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
			} `json:"replicas"`
		} `json:"cluster"`
	}
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		return err
	}
	if info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
		return fmt.Errorf("leader %q, %d other replicas", info.Cluster.Leader, len(info.Cluster.Replicas))
	}
	for _, r := range info.Cluster.Replicas {
		if !r.Current {
			return fmt.Errorf("replica %s is not current", r.Name)
		}
	}
	return nil
}

func startTask(id string) commands.StartTask { return commands.StartTask{TaskID: id} }

func updateTags(id string, tags ...string) commands.UpdateTask {
	return commands.UpdateTask{TaskID: id, Tags: &tags}
}

// TestRealClusterStartsActedOnOnce starts ten tasks twenty times each on
// three real nats-server processes, killing a node and starting it again
// twice in between (a replica that rejoins is behind for a while, and
// direct gets may be answered by it): every one of the 200 starts is
// acted on exactly once, one server process each, and every run ends.
func TestRealClusterStartsActedOnOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs three nats-server processes and 200 starts")
	}
	const tasks, rounds = 10, 20
	ctx := context.Background()
	c := newRealCluster(t)
	c.startCloud()
	spawned := filepath.Join(c.dir, "spawned")
	server := []string{"sh", "-c", `echo "$FLMNGR_TASK $FLMNGR_RUN" >> ` + spawned + `; echo '{"type":"info","info":"Finished"}'`}
	id := func(i int) string { return fmt.Sprintf("s%02d", i) }
	for i := range tasks {
		if _, err := c.op.CreateTask(ctx, commands.CreateTask{TaskID: id(i), Host: "127.0.0.1", Port: 9, SelectionCriteria: "false", ServerCommand: server}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.op.CreateTask(ctx, commands.CreateTask{TaskID: "filler", Host: "127.0.0.1", Port: 9, SelectionCriteria: "false"}); err != nil {
		t.Fatal(err)
	}
	killAt := map[int]int{5: 0, 12: 1}
	restartAt := map[int]int{8: 0, 15: 1}
	for r := 1; r <= rounds; r++ {
		if n, ok := killAt[r]; ok {
			c.killNode(n)
			t.Logf("round %d: node %s killed", r, c.nodes[n].name)
			// The log grows while the node is away: back, it is behind by
			// thousands of events for a while, and answers direct gets
			// once it has 90% of them.
			fill(t, c.op, 5000)
		}
		if n, ok := restartAt[r]; ok {
			c.startNode(n)
			t.Logf("round %d: node %s started again", r, c.nodes[n].name)
		}
		run := fmt.Sprint(r)
		for i := range tasks {
			// A start whose reply is lost is sent again under the same key:
			// it is acted on once.
			kctx := commands.WithIdempotencyKey(ctx, id(i)+"-start-"+run)
			waitUntil(t, "start "+id(i)+" run "+run, time.Minute, func() error {
				cctx, cancel := context.WithTimeout(kctx, 2*time.Second)
				defer cancel()
				_, err := c.op.StartTask(cctx, startTask(id(i)))
				return err
			})
		}
		for i := range tasks {
			waitUntil(t, id(i)+" run "+run+" to finish", 2*time.Minute, func() error {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				task, err := c.op.Task(cctx, id(i))
				if err != nil || task.Run != run || task.Status != "finished" {
					return fmt.Errorf("run %s is %s (%v)", task.Run, task.Status, err)
				}
				return nil
			})
		}
	}
	b, err := os.ReadFile(spawned)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	seen := map[string]int{}
	for _, l := range lines {
		seen[l]++
	}
	requested, started, ended := map[string]int{}, map[string]int{}, map[string]int{}
	for _, e := range c.events(c.admin()) {
		key := e.Aggregate.ID + " "
		switch p := e.Event.(type) {
		case *events.TaskStartRequested:
			requested[key+p.Run]++
		case *events.TaskServerStarted:
			started[key+p.Run]++
		case *events.TaskFinished:
			ended[key+p.Run]++
		}
	}
	once := 0
	for i := range tasks {
		for r := 1; r <= rounds; r++ {
			k := fmt.Sprintf("%s %d", id(i), r)
			if seen[k] == 1 && requested[k] == 1 && started[k] == 1 && ended[k] == 1 {
				once++
			} else {
				t.Errorf("%s: %d processes, %d start requests, %d server starts, %d ends", k, seen[k], requested[k], started[k], ended[k])
			}
		}
	}
	t.Logf("%d of %d starts were acted on exactly once (%d server processes in all)", once, tasks*rounds, len(lines))
}

// TestRealClusterRevocationCutsAtOnce revokes a connected client's key on
// a three-node cluster: its connection is closed within a second, and it
// cannot connect again, with no configuration edited and no reload.
func TestRealClusterRevocationCutsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs three nats-server processes")
	}
	c := newRealCluster(t)
	c.startCloud()
	creds := filepath.Join(c.dir, "edge.creds")
	c.cli("client-credentials", "create", "edge", "--out", creds)
	cr, err := auth.ReadCreds(creds)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan time.Time, 1)
	// Connected to the node the cloud is not told about: the revocation
	// must reach every server.
	nc, err := nats.Connect(c.nodes[2].url, cr.Option(), nats.CustomInboxPrefix(auth.InboxPrefix("edge")), nats.NoReconnect(),
		nats.ClosedHandler(func(*nats.Conn) { closed <- time.Now() }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := api.NewClient(nc, 5*time.Second).ForClient("edge").Report(context.Background(), reportRegister()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.cli("client-credentials", "revoke", "edge")
	select {
	case at := <-closed:
		t.Logf("the revoked client's connection closed %s after the revoke command was sent", ms(at.Sub(start)))
		if at.Sub(start) > time.Second {
			t.Fatalf("the revoked client was cut after %s, want under a second", at.Sub(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked client stayed connected")
	}
	for _, n := range c.nodes {
		if nc, err := nats.Connect(n.url, cr.Option()); err == nil {
			nc.Close()
			t.Fatalf("the revoked key connected again to %s", n.name)
		}
	}
}

func reportRegister() commands.ReportClientInfo { return commands.ReportClientInfo{Register: true} }

// fill appends n events to the log, as fast as 32 callers can.
func fill(t *testing.T, op *api.Client, n int) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				tags := []string{fmt.Sprintf("fill-%d", i)}
				if _, err := op.UpdateTask(context.Background(), commands.UpdateTask{TaskID: "filler", Tags: &tags}); err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if failed != nil {
		t.Logf("filling the log: %v", failed)
	}
}
