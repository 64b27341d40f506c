package flowerapp_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/testkit"
	"github.com/flmngr/flmngr/taskd"
	"github.com/flmngr/flmngr/tasks/flowerapp"
)

// lines is a concurrency-safe writer that keeps what was written.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// text is what was written so far.
func (l *lines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// messages parses the report lines written so far.
func (l *lines) messages() []taskd.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []taskd.Message
	sc := bufio.NewScanner(bytes.NewReader(l.buf.Bytes()))
	for sc.Scan() {
		out = append(out, taskd.Parse("stdout", sc.Bytes()))
	}
	return out
}

func (l *lines) has(kind taskd.Kind, text string) bool {
	for _, m := range l.messages() {
		if m.Kind == kind && (m.Step == text || m.Text == text || strings.HasPrefix(m.Text, text)) {
			return true
		}
	}
	return false
}

func (l *lines) steps() []string {
	var out []string
	for _, m := range l.messages() {
		if m.Kind == taskd.KindStep {
			out = append(out, m.Step+" "+m.Text)
		}
	}
	return out
}

// link is the cloud's state directory of a SuperLink, with its TLS
// files issued.
type link struct {
	state string
	ca    []byte
}

func newLink(t *testing.T) link {
	t.Helper()
	state := t.TempDir()
	ca, err := flowerapp.IssueTLS(state, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return link{state: state, ca: ca}
}

// admit lets a node's key in, as the cloud does for a matched client.
func (l link) admit(t *testing.T, client string, n *node) {
	t.Helper()
	if err := flowerapp.Admit(l.state, client, n.key); err != nil {
		t.Fatal(err)
	}
}

type node struct {
	out, log lines
	key      string // its public key
	state    string
	err      error
	done     chan struct{}
	cancel   context.CancelFunc
}

// startNode runs a client's SuperNode driver, with a fresh key pair and
// the SuperLink's CA as the agent gives them.
func startNode(t *testing.T, superlink string, l link, client string, fast int, admitWait time.Duration) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{done: make(chan struct{}), cancel: cancel, state: t.TempDir()}
	key, err := flowerapp.PrepareNode(n.state, l.ca)
	if err != nil {
		t.Fatal(err)
	}
	n.key = key
	go func() {
		defer close(n.done)
		n.err = flowerapp.RunClient(ctx, flowerapp.ClientConfig{SuperLink: superlink, Client: client, State: n.state,
			NodeConfig: []string{"partition-id=0"}, FastFailures: fast, AdmitWait: admitWait, Report: flowerapp.NewReporter(&n.out), Log: &n.log})
	}()
	t.Cleanup(func() { cancel(); <-n.done })
	return n
}

// startAdmitted runs a SuperNode the SuperLink admits.
func startAdmitted(t *testing.T, superlink string, l link, client string) *node {
	t.Helper()
	n := startNode(t, superlink, l, client, 0, 0)
	l.admit(t, client, n)
	return n
}

// TestServerRunsAppToCompletion: the SuperLink starts with its ports and
// database, the run is submitted and followed to finished:completed, each
// round is reported with its metrics, the log is recorded, then Finished.
func TestServerRunsAppToCompletion(t *testing.T) {
	state := useFakeFlower(t)
	listen := testkit.FreeAddr(t)
	app := copyApp(t)
	l := newLink(t)
	startAdmitted(t, listen, l, "site-1")
	startAdmitted(t, listen, l, "site-2")
	var out, log lines
	stateDir := l.state
	err := flowerapp.RunServer(context.Background(), flowerapp.ServerConfig{Listen: listen, App: app, State: stateDir,
		RunConfig: []string{"num-server-rounds=2"}, Poll: 50 * time.Millisecond, Report: flowerapp.NewReporter(&out), Log: &log})
	if err != nil {
		t.Fatalf("RunServer: %v\n%s", err, log.buf.String())
	}
	var rounds []taskd.Message
	for _, m := range out.messages() {
		if m.Kind == taskd.KindModel {
			rounds = append(rounds, m)
		}
	}
	if len(rounds) != 2 || rounds[0].Round != 1 || rounds[1].Round != 2 {
		t.Fatalf("rounds reported: %+v\nsteps %q", rounds, out.steps())
	}
	if rounds[1].Metrics["train_loss"] != 1.0/3 || rounds[1].Metrics["eval_mse"] != 2.0/3 || rounds[1].Metrics["train_results"] != 2 || rounds[1].Raw["eval_per-node"] != "[0.1, 0.2]" {
		t.Fatalf("round 2 metrics: %+v %+v", rounds[1].Metrics, rounds[1].Raw)
	}
	for _, want := range []string{"superlink_started", "run_submitted", "run_status", "log_recorded"} {
		if !out.has(taskd.KindStep, want) {
			t.Errorf("no %s step: %q", want, out.steps())
		}
	}
	msgs := out.messages()
	if last := msgs[len(msgs)-1]; !last.IsFinished() {
		t.Fatalf("last report %+v, want Finished", last)
	}
	if !out.has(taskd.KindStep, "run_status") || !strings.Contains(strings.Join(out.steps(), "\n"), "run_status finished:completed") {
		t.Fatalf("steps %q lack finished:completed", out.steps())
	}
	sl := calls(state, "flower-superlink")
	if len(sl) != 1 {
		t.Fatalf("superlink command lines: %q", sl)
	}
	_, port, _ := net.SplitHostPort(listen)
	p, _ := strconv.Atoi(port)
	for _, want := range []string{"--fleet-api-address " + listen, "--control-api-address 127.0.0.1:" + strconv.Itoa(p+2),
		"--serverappio-api-address 127.0.0.1:" + strconv.Itoa(p+1), "--database " + filepath.Join(stateDir, "state.db"),
		"--ssl-ca-certfile " + filepath.Join(stateDir, "tls", "ca.pem"), "--ssl-certfile " + filepath.Join(stateDir, "tls", "server.pem"),
		"--ssl-keyfile " + filepath.Join(stateDir, "tls", "server.key"), "--enable-supernode-auth"} {
		if !strings.Contains(sl[0], want) {
			t.Errorf("superlink started as %q, without %q", sl[0], want)
		}
	}
	if strings.Contains(sl[0], "--insecure") {
		t.Errorf("superlink started without TLS: %q", sl[0])
	}
	if regs := calls(state, "flwr supernode register"); len(regs) != 2 {
		t.Errorf("flwr supernode register calls: %q", regs)
	}
	if runs := calls(state, "flwr run"); len(runs) != 1 || !strings.Contains(runs[0], "--run-config num-server-rounds=2") || !strings.Contains(runs[0], "--format json") {
		t.Errorf("flwr run calls: %q", runs)
	}
	if logs := calls(state, "flwr log"); len(logs) != 1 || !strings.HasSuffix(logs[0], "--show") {
		t.Errorf("flwr log calls: %q", logs)
	}
	if !strings.Contains(log.buf.String(), "superlink: INFO :      [ROUND 2/2]") || !strings.Contains(log.buf.String(), "flwr log: INFO :      Strategy execution finished") {
		t.Errorf("the SuperLink's output and the run's log are not in the log:\n%s", log.buf.String())
	}
}

// TestStopMapsToFlwrStop: a driver asked to stop (SIGTERM: ctx ends)
// stops the run with `flwr stop` while the SuperLink runs, then the
// SuperLink; it reports no error and no Finished.
func TestStopMapsToFlwrStop(t *testing.T) {
	state := useFakeFlower(t)
	t.Setenv("FAKE_FLOWER_ROUND_MS", "10000")
	listen := testkit.FreeAddr(t)
	l := newLink(t)
	startAdmitted(t, listen, l, "site-1")
	startAdmitted(t, listen, l, "site-2")
	var out, log lines
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- flowerapp.RunServer(ctx, flowerapp.ServerConfig{Listen: listen, App: copyApp(t), State: l.state,
			Poll: 50 * time.Millisecond, Report: flowerapp.NewReporter(&out), Log: &log})
	}()
	waitFor(t, 30*time.Second, "the run running", func() bool {
		return strings.Contains(strings.Join(out.steps(), "\n"), "run_status running")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("a stopped driver returned %v", err)
	}
	stops := calls(state, "flwr stop")
	if len(stops) != 1 {
		t.Fatalf("flwr stop calls: %q", stops)
	}
	if !out.has(taskd.KindStep, "run_stopped") || out.has(taskd.KindInfo, "Finished") || out.has(taskd.KindError, "") {
		t.Fatalf("reports of a stopped run: %q", out.steps())
	}
	id := strings.Fields(stops[0])[2]
	if _, err := os.Stat(filepath.Join(state, "runs", id+".stop")); err != nil {
		t.Fatalf("the SuperLink did not get the stop of run %s: %v", id, err)
	}
	if !strings.Contains(log.buf.String(), "SuperLink terminated gracefully") {
		t.Fatalf("the SuperLink was not stopped after the run:\n%s", log.buf.String())
	}
}

// TestFailedRunIsAnError: flwr's exit code says nothing; a run that ends
// finished:failed is an error with the status and the log's last lines.
func TestFailedRunIsAnError(t *testing.T) {
	useFakeFlower(t)
	t.Setenv("FAKE_FLOWER_FAIL", "1")
	listen := testkit.FreeAddr(t)
	l := newLink(t)
	startAdmitted(t, listen, l, "site-1")
	startAdmitted(t, listen, l, "site-2")
	var out, log lines
	err := flowerapp.RunServer(context.Background(), flowerapp.ServerConfig{Listen: listen, App: copyApp(t), State: l.state,
		Poll: 50 * time.Millisecond, Report: flowerapp.NewReporter(&out), Log: &log})
	if err == nil || !strings.Contains(err.Error(), "finished:failed") || !strings.Contains(err.Error(), "broken app") {
		t.Fatalf("RunServer of a failing run: %v", err)
	}
	if out.has(taskd.KindInfo, "Finished") {
		t.Fatal("a failed run reported Finished")
	}
}

// TestUnreachableSuperLinkIsAnError: flwr answers success false with exit
// code 0; the driver reads the answer and fails.
func TestUnreachableSuperLinkIsAnError(t *testing.T) {
	useFakeFlower(t)
	cli := flowerapp.CLI{App: copyApp(t), Federation: flowerapp.Federation}
	if err := flowerapp.WriteFederation(cli.App, testkit.FreeAddr(t), filepath.Join(newLink(t).state, "tls", "ca.pem")); err != nil {
		t.Fatal(err)
	}
	_, err := cli.Submit(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "unavailable") {
		t.Fatalf("Submit to no SuperLink: %v", err)
	}
	if _, err := cli.Log(context.Background(), "123"); err == nil {
		t.Fatal("flwr log of an unknown run (exit 1) is no error")
	}
}

// TestSuperNodeRestartsAlways: a SuperNode whose SuperLink goes away
// exits 0; the driver starts it again (on a fresh ClientAppIo port) and it
// joins the SuperLink when it is back.
func TestSuperNodeRestartsAlways(t *testing.T) {
	state := useFakeFlower(t)
	listen := testkit.FreeAddr(t)
	l := newLink(t)
	n := startNode(t, listen, l, "site-1", 0, 0)
	linkOut := filepath.Join(t.TempDir(), "superlink.out")
	startLink := func() *os.Process { return startSuperLink(t, l, listen, linkOut) }
	link := startLink()
	activated := func() bool { b, _ := os.ReadFile(linkOut); return strings.Contains(string(b), "Activated") }
	waitFor(t, 20*time.Second, "the SuperNode connected", activated)
	_ = link.Kill()
	_, _ = link.Wait()
	waitFor(t, 20*time.Second, "the SuperNode restarted", func() bool { return strings.Count(strings.Join(n.out.steps(), "\n"), "supernode_started") >= 2 })
	if !strings.Contains(strings.Join(n.out.steps(), "\n"), "supernode_exited exit code 0") {
		t.Fatalf("steps: %q", n.out.steps())
	}
	link = startLink()
	defer func() { _ = link.Kill(); _, _ = link.Wait() }()
	waitFor(t, 30*time.Second, "the restarted SuperNode connected", activated)
	nodes := calls(state, "flower-supernode")
	ports := map[string]bool{}
	for _, c := range nodes {
		f := strings.Fields(c)
		for i := range f {
			if f[i] == "--clientappio-api-address" {
				ports[f[i+1]] = true
			}
		}
	}
	if len(ports) < 2 {
		t.Fatalf("the restarted SuperNode reused its ClientAppIo port: %q", nodes)
	}
	if n.out.has(taskd.KindError, "") {
		t.Fatalf("a SuperNode restarting reported an error: %q", n.out.messages())
	}
}

// startSuperLink runs the fake SuperLink by itself with TLS and no
// SuperNode authentication (and the extra flags), its output in out.
func startSuperLink(t *testing.T, l link, listen, out string, extra ...string) *os.Process {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tls := filepath.Join(l.state, "tls")
	argv := append([]string{"flower-superlink", "--ssl-ca-certfile", filepath.Join(tls, "ca.pem"), "--ssl-certfile", filepath.Join(tls, "server.pem"),
		"--ssl-keyfile", filepath.Join(tls, "server.key"), "--fleet-api-address", listen, "--control-api-address", testkit.FreeAddr(t)}, extra...)
	p, err := os.StartProcess(filepath.Join(filepath.Dir(firstOnPath(t, "flwr")), "flower-superlink"), argv,
		&os.ProcAttr{Env: os.Environ(), Files: []*os.File{nil, f, f}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill(); _, _ = p.Wait() })
	return p
}

func firstOnPath(t *testing.T, name string) string {
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name)
		}
	}
	t.Fatalf("%s not on PATH", name)
	return ""
}

// TestRefusedSuperNodeFails: a SuperNode whose key the SuperLink does
// not know is refused and exits 1 at once; past its admission wait,
// after FastFailures such exits the driver fails (the agent then
// quarantines the task and fails over).
func TestRefusedSuperNodeFails(t *testing.T) {
	useFakeFlower(t)
	listen := testkit.FreeAddr(t)
	l := newLink(t)
	out := filepath.Join(t.TempDir(), "superlink.out")
	startSuperLink(t, l, listen, out, "--enable-supernode-auth")
	n := startNode(t, listen, l, "site-3", 2, time.Millisecond)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		t.Fatal("a refused SuperNode is retried for ever")
	}
	if n.err == nil || !strings.Contains(n.err.Error(), "exited with code 1 2 times in a row") {
		t.Fatalf("RunClient of a refused node: %v", n.err)
	}
	if b, _ := os.ReadFile(out); !strings.Contains(string(b), "Activation failed: No SuperNode found with the given public key.") {
		t.Fatalf("the SuperLink did not refuse the key:\n%s", b)
	}
}

// TestNodeConfigCarriesTheClient: the ClientApp learns which flmngr
// client it runs on, plus the task's node config.
func TestNodeConfigCarriesTheClient(t *testing.T) {
	c := flowerapp.ClientConfig{Client: "site-1", NodeConfig: []string{"partition-id=0 num-partitions=2"}}
	if got, want := c.NodeConfigArg(), `flmngr-client-id="site-1" partition-id=0 num-partitions=2`; got != want {
		t.Fatalf("node config %q, want %q", got, want)
	}
}

// TestKilledSuperNodeIsLetBackIn: a SuperNode killed with SIGKILL stays
// online for the SuperLink until its heartbeats time out, which refuses
// its restarts meanwhile ("could not be activated"); the driver waits
// that out, however long the SuperNode had run, and it joins again.
func TestKilledSuperNodeIsLetBackIn(t *testing.T) {
	state := useFakeFlower(t)
	t.Setenv("FAKE_FLOWER_ROUND_MS", "60000")
	t.Setenv("FAKE_FLOWER_PATIENCE_MS", "3000")
	listen := testkit.FreeAddr(t)
	l := newLink(t)
	n := startNode(t, listen, l, "site-1", 2, 5*time.Second)
	l.admit(t, "site-1", n)
	startAdmitted(t, listen, l, "site-2")
	var out, log lines
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- flowerapp.RunServer(ctx, flowerapp.ServerConfig{Listen: listen, App: copyApp(t), State: l.state,
			Poll: 50 * time.Millisecond, Report: flowerapp.NewReporter(&out), Log: &log})
	}()
	defer func() { cancel(); <-done }()
	online := func() int {
		var nodes []struct{ Status string }
		_ = json.Unmarshal([]byte(readText(filepath.Join(l.state, "state.db.nodes.json"))), &nodes)
		k := 0
		for _, n := range nodes {
			if n.Status == "online" {
				k++
			}
		}
		return k
	}
	waitFor(t, 30*time.Second, "both SuperNodes online", func() bool { return online() == 2 })
	// Past its admission wait: a refusal now is a new one.
	time.Sleep(11 * time.Second)
	var pid int
	for _, s := range n.out.steps() {
		if p, ok := strings.CutPrefix(s, "supernode_started pid "); ok {
			pid, _ = strconv.Atoi(strings.Fields(p)[0])
		}
	}
	before := len(n.out.steps())
	logBefore := len(n.log.text())
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	after := func() string { return strings.Join(n.out.steps()[before:], "\n") }
	waitFor(t, 30*time.Second, "a refused restart", func() bool { return strings.Contains(after(), "supernode_refused") })
	waitFor(t, 30*time.Second, "the killed SuperNode back in", func() bool {
		a := after()
		return strings.Count(a, "supernode_started") >= 2 && strings.LastIndex(a, "supernode_started") > strings.LastIndex(a, "supernode_refused") && online() == 2 &&
			strings.Count(readText(filepath.Join(state, "calls.log")), "flower-supernode") >= 4
	})
	// Back in: no exit after the last start for a while.
	time.Sleep(time.Second)
	if a := after(); strings.LastIndex(a, "supernode_started") < strings.LastIndex(a, "supernode_") || !strings.Contains(a, "supernode_exited exit code -1") {
		t.Fatalf("steps after the kill: %s", a)
	}
	if !strings.Contains(n.log.text()[logBefore:], "could not be activated") {
		t.Fatalf("no refusal while the node was still online:\n%s", n.log.text()[logBefore:])
	}
	if n.out.has(taskd.KindError, "") {
		t.Fatalf("the driver of a killed SuperNode failed: %v\n%q", n.err, n.out.steps())
	}
	if !strings.Contains(n.log.text(), "could not be activated") {
		t.Fatalf("no refusal while the node was still online:\n%s", n.log.text())
	}
}
