package main

import (
	"bufio"
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

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/testkit"
)

// operator are the connection options of an operator of the deployment
// whose data directory is data.
func operator(t *testing.T, data string) nats.Option {
	t.Helper()
	opts, err := auth.OperatorOptions(filepath.Join(data, "operator.creds"))
	if err != nil {
		t.Fatal(err)
	}
	return func(o *nats.Options) error {
		for _, opt := range opts {
			if err := opt(o); err != nil {
				return err
			}
		}
		return nil
	}
}

// admin are connection options with every right, made from the
// deployment's trust material as only the cloud has it: for checks that
// read the stream itself.
func admin(t *testing.T, data string) nats.Option {
	t.Helper()
	trust, _, err := auth.LoadOrCreateTrust(auth.KeysFile(data))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := trust.NewUser(auth.RoleAdmin, "test-admin")
	if err != nil {
		t.Fatal(err)
	}
	return creds.Option()
}

// clientKey gives client id its identity as an operator would, with the
// CLI, and returns the key file.
func clientKey(t *testing.T, data, listen, id string) string {
	t.Helper()
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(filepath.Dir(data), id+".creds")
	out, err := exec.Command(bin, "client-credentials", "create", id, "--out", key, "--force",
		"--nats", "nats://"+listen, "--creds", filepath.Join(data, "operator.creds")).CombinedOutput()
	if err != nil {
		t.Fatalf("client-credentials create %s: %v\n%s", id, err, out)
	}
	return key
}

// startUp runs `flmngr up` and returns once it printed that it is up.
func startUp(t *testing.T, data, listen string) *exec.Cmd {
	cmd, _ := startUpHTTP(t, data, listen)
	return cmd
}

// startUpHTTP is startUp that also returns the gateway's URL.
func startUpHTTP(t *testing.T, data, listen string) (*exec.Cmd, string) {
	t.Helper()
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "up", "--data", data, "--listen", listen, "--http", "127.0.0.1:0", "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	up := make(chan error, 1)
	httpURL := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), "HTTP:  "); ok {
				httpURL <- strings.Fields(u)[0]
			}
			if strings.Contains(line, "Stop with Ctrl-C") {
				up <- nil
				for sc.Scan() {
				}
				return
			}
		}
		up <- fmt.Errorf("flmngr up exited before it was up")
	}()
	select {
	case err := <-up:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("flmngr up did not come up")
	}
	select {
	case u := <-httpURL:
		return cmd, u
	default:
		return cmd, ""
	}
}

// TestSIGKILLDuringCreateBurst kills `flmngr up` with SIGKILL in the middle
// of a burst of 1,000 creates, starts it again, finishes the burst and
// checks that every acknowledged create is in the views, none twice, and
// that the stream holds no duplicate event id.
func TestSIGKILLDuringCreateBurst(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	listen := testkit.FreeAddr(t)
	up := startUp(t, data, listen)

	const total = 1000
	acked := make([]bool, total)
	var mu sync.Mutex
	burst := func(from int, killAfter int, kill func()) {
		nc, err := nats.Connect("nats://"+listen, nats.MaxReconnects(0), operator(t, data))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		c := api.NewClient(nc, 5*time.Second)
		jobs := make(chan int)
		var wg sync.WaitGroup
		var count int
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range jobs {
					_, err := c.CreateTask(context.Background(), commands.CreateTask{TaskID: fmt.Sprintf("burst-%04d", i), Host: "localhost", Port: 1 + i})
					if err != nil && fault.KindOf(err) != fault.KindConflict {
						continue // lost with the server: not acknowledged
					}
					mu.Lock()
					acked[i] = true
					count++
					if count == killAfter && kill != nil {
						kill()
					}
					mu.Unlock()
				}
			}()
		}
		for i := from; i < total; i++ {
			if !acked[i] {
				jobs <- i
			}
		}
		close(jobs)
		wg.Wait()
	}
	burst(0, 400, func() {
		if err := up.Process.Signal(syscall.SIGKILL); err != nil {
			t.Error(err)
		}
	})
	_ = up.Wait()
	var before int
	for _, ok := range acked {
		if ok {
			before++
		}
	}
	if before < 400 || before == total {
		t.Fatalf("%d creates acknowledged before the kill; the kill did not land mid-burst", before)
	}
	t.Logf("%d of %d creates acknowledged before SIGKILL", before, total)

	startUp(t, data, listen)
	burst(0, 0, nil)

	nc, err := nats.Connect("nats://"+listen, operator(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := api.NewClient(nc, 10*time.Second)
	tasks, err := c.Tasks(context.Background(), api.ListTasksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		if seen[task.ID] {
			t.Fatalf("task %s listed twice", task.ID)
		}
		seen[task.ID] = true
	}
	for i, ok := range acked {
		id := fmt.Sprintf("burst-%04d", i)
		if !ok {
			t.Fatalf("create %s never acknowledged", id)
		}
		if !seen[id] {
			t.Fatalf("acknowledged create %s is not in the views", id)
		}
	}
	if len(tasks) != total {
		t.Fatalf("%d tasks in the views, want %d", len(tasks), total)
	}

	anc, err := nats.Connect("nats://"+listen, admin(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer anc.Close()
	log, err := eventlog.Attach(context.Background(), anc, eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]uint64{}
	created := map[string]int{}
	_, err = log.Replay(context.Background(), eventlog.FollowOptions{}, func(e events.Envelope) error {
		if prev, dup := ids[e.ID]; dup {
			return fmt.Errorf("event id %s stored at %d and %d", e.ID, prev, e.Seq)
		}
		ids[e.ID] = e.Seq
		if e.Type == events.TaskCreatedV1 {
			created[e.Aggregate.ID]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range created {
		if n != 1 {
			t.Fatalf("task %s created %d times in the stream", id, n)
		}
	}
	if len(created) != total {
		t.Fatalf("stream has %d created tasks, want %d", len(created), total)
	}
}
