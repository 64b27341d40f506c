package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/testkit"
	"github.com/flmngr/flmngr/tasks/fedavg"
)

// syncBuf collects a process's output.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// site is a deployment run from the real binary: `flmngr up`, client
// agents enrolled with the CLI, and an operator's connection.
type site struct {
	t                 *testing.T
	bin, dir, data    string
	listen            string
	up                *exec.Cmd
	upOut             *syncBuf
	nc                *nats.Conn
	api               *api.Client
	agents            map[string]*exec.Cmd
	agentOut          map[string]*syncBuf
	agentURL          map[string]string
	upArgs, agentArgs []string
}

func newSite(t *testing.T) *site {
	t.Helper()
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &site{t: t, bin: bin, dir: dir, data: filepath.Join(dir, "data"), listen: testkit.FreeAddr(t), upOut: &syncBuf{},
		agents: map[string]*exec.Cmd{}, agentOut: map[string]*syncBuf{}, agentURL: map[string]string{}}
	t.Cleanup(func() {
		for id := range s.agents {
			s.signalAgent(id, syscall.SIGKILL)
		}
		if s.nc != nil {
			s.nc.Close()
		}
		if s.up != nil && s.up.ProcessState == nil {
			_ = s.up.Process.Kill()
			_ = s.up.Wait()
		}
		if t.Failed() {
			t.Logf("--- flmngr up:\n%s", s.upOut.String())
			for id, out := range s.agentOut {
				t.Logf("--- agent %s:\n%s", id, out.String())
			}
		}
	})
	return s
}

// startUp runs `flmngr up` on the site's data and waits until it serves.
func (s *site) startUp() {
	s.t.Helper()
	args := append([]string{"up", "--data", s.data, "--listen", s.listen, "--http", "127.0.0.1:0", "--log-level", "info"}, s.upArgs...)
	s.up = exec.Command(s.bin, args...)
	mark := len(s.upOut.String())
	s.up.Stdout, s.up.Stderr = s.upOut, s.upOut
	if err := s.up.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.waitFor("flmngr up", 30*time.Second, func() error {
		if strings.Contains(s.upOut.String()[mark:], "Stop with Ctrl-C") {
			return nil
		}
		return fmt.Errorf("not up yet")
	})
	if s.nc == nil {
		nc, err := nats.Connect("nats://"+s.listen, operator(s.t, s.data), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			s.t.Fatal(err)
		}
		s.nc, s.api = nc, api.NewClient(nc, 10*time.Second)
	}
	s.waitFor("the API", 30*time.Second, func() error { _, err := s.api.Status(context.Background()); return err })
}

func (s *site) killUp() {
	s.t.Helper()
	if err := s.up.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
	_ = s.up.Wait()
}

func (s *site) stopUp() {
	s.t.Helper()
	if err := s.up.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	_ = s.up.Wait()
}

// cli runs a CLI command as the operator and returns its output.
func (s *site) cli(args ...string) string {
	s.t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "FLMNGR_NATS=nats://"+s.listen, "FLMNGR_CREDS="+filepath.Join(s.data, "operator.creds"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("flmngr %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startAgent enrols client id (once) and runs its agent, connected to url
// ("" : the site's NATS).
func (s *site) startAgent(id, url string) {
	s.t.Helper()
	key := filepath.Join(s.dir, id+".creds")
	if _, err := os.Stat(key); err != nil {
		s.cli("client-credentials", "create", id, "--out", key)
	}
	if url == "" {
		url = "nats://" + s.listen
	}
	if s.agentOut[id] == nil {
		s.agentOut[id] = &syncBuf{}
	}
	args := append([]string{"client", "--id", id, "--sensors", "camera", "--data-qnt", "30000", "--nats", url, "--creds", key,
		"--workdir", filepath.Join(s.dir, "agents", id), "--grace", "2s"}, s.agentArgs...)
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = s.agentOut[id], s.agentOut[id]
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.agents[id], s.agentURL[id] = cmd, url
}

func (s *site) signalAgent(id string, sig syscall.Signal) {
	cmd := s.agents[id]
	if cmd == nil || cmd.ProcessState != nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	_ = cmd.Wait()
}

// fedavgTask registers a FedAvg task through the CLI and uploads its
// configuration.
func (s *site) fedavgTask(id, serverArgs, clientArgs string, extra ...string) {
	s.t.Helper()
	conf := filepath.Join(s.dir, "fedavg.json")
	if _, err := os.Stat(conf); err != nil {
		settings := fedavg.DefaultConfig()
		settings.Trigger = fedavg.NotifyTrigger
		if err := os.WriteFile(conf, settings.JSON(), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	port := strings.Split(testkit.FreeAddr(s.t), ":")[1]
	args := append([]string{"task", "create", id, "--host", "127.0.0.1", "--port", port, "--criterion", `"camera" in sensors`,
		"--server-cmd", strings.Join(fedavg.ServerCommand, " "), "--client-cmd", strings.Join(fedavg.ClientCommand, " "),
		"--server-args", serverArgs, "--client-args", clientArgs, "--files", "fedavg.json"}, extra...)
	s.cli(args...)
	s.cli("task", "upload", id, conf)
}

func (s *site) waitFor(what string, timeout time.Duration, fn func() error) {
	s.t.Helper()
	testkit.WaitFor(s.t, timeout, what, fn)
}

func (s *site) task(id string) api.Task {
	s.t.Helper()
	t, err := s.api.Task(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return t
}

// waitStatus waits until a task is in one of the statuses.
func (s *site) waitStatus(id string, timeout time.Duration, statuses ...string) api.Task {
	s.t.Helper()
	var t api.Task
	s.waitFor("task "+id+" "+strings.Join(statuses, "/"), timeout, func() (err error) {
		if t, err = s.api.Task(context.Background(), id); err != nil {
			return err
		}
		for _, st := range statuses {
			if string(t.Status) == st {
				return nil
			}
		}
		return fmt.Errorf("task %s is %s (round %d, %s)", id, t.Status, t.Round, t.LastError)
	})
	return t
}

// timeline returns every timeline entry of a task or a client.
func (s *site) timeline(q projections.TimelineQuery) []projections.TimelineEntry {
	s.t.Helper()
	var all []projections.TimelineEntry
	for {
		page, err := s.api.Timeline(context.Background(), api.TimelineRequest{TimelineQuery: q})
		if err != nil {
			s.t.Fatal(err)
		}
		all = append(all, page.Entries...)
		if page.Next == 0 {
			return all
		}
		q.After = page.Next
	}
}

// events reads the events q selects from the log, every page of them.
func (s *site) events(q api.EventsRequest) []events.Envelope {
	s.t.Helper()
	var all []events.Envelope
	for {
		page, next, err := s.api.Events(context.Background(), q)
		if err != nil {
			s.t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) == 0 || next <= q.After {
			return all
		}
		q.After = next
	}
}

func count(entries []projections.TimelineEntry, typ, task string) int {
	n := 0
	for _, e := range entries {
		if e.Type == typ && (task == "" || e.Task == task || e.Aggregate == "task/"+task) {
			n++
		}
	}
	return n
}

func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && len(b) > i+2 && b[i+2] != 'Z'
}

// storedViewsEqualRebuild opens a stopped deployment's data, lets its views
// catch up with the log, and checks that they equal, byte for byte,
// views rebuilt from the log. It returns how many events the log holds.
func storedViewsEqualRebuild(t *testing.T, data string) (uint64, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := cloud.OpenStopped(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log, views := st.Log, st.Views
	last, err := log.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- views.Run(rctx, log) }()
	if err := views.WaitFor(ctx, last); err != nil {
		t.Fatalf("views catching up to %d: %v", last, err)
	}
	stop()
	<-done
	dump := func() map[string]string {
		m := map[string]string{}
		if err := views.Dump(func(k, v []byte) error { m[string(k)] = string(v); return nil }); err != nil {
			t.Fatal(err)
		}
		return m
	}
	before := dump()
	if _, err := views.RebuildOffline(ctx, log); err != nil {
		t.Fatal(err)
	}
	after := dump()
	if len(before) != len(after) {
		t.Fatalf("views have %d keys, a rebuild %d", len(before), len(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("view %q differs from its rebuild:\n%s\n%s", k, v, after[k])
		}
	}
	return last, after
}
