package flower_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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

var sources = []string{"server.py", "client.py", "task.py", "trigger_example.py", "../python/flmngr_reporter.py"}

// TestPythonFilesCompile checks the task's Python is valid wherever
// python3 exists, even without flwr.
func TestPythonFilesCompile(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed")
	}
	for _, f := range sources {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(py, "-c", "import sys; compile(sys.stdin.read(), sys.argv[1], 'exec')", f)
		cmd.Stdin = strings.NewReader(string(src))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not compile: %v\n%s", f, err, out)
		}
	}
}

// TestFlowerTaskUnderFlmngr runs the Flower task under flmngr: the server
// on the cloud and two managed clients, three rounds, finished.
func TestFlowerTaskUnderFlmngr(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: the Flower task cannot run here")
	}
	if out, err := exec.Command(py, "-c", "import flwr, numpy").CombinedOutput(); err != nil {
		t.Skipf("skipping the Flower task: `import flwr, numpy` fails here (%s); install them with `pip install flwr numpy` to run it", strings.TrimSpace(lastLine(string(out))))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	c, err := cloud.Open(ctx, cloud.Config{DataDir: filepath.Join(dir, "cloud"), Listen: "127.0.0.1:0", Name: "flower"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, id := range []string{"site-1", "site-2"} {
		nc, err := c.ConnectClient(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		sensors := []string{"camera"}
		a, err := agent.New(nc, agent.Config{ClientID: id, Info: commands.ClientInfo{Sensors: &sensors}, WorkDir: filepath.Join(dir, id)})
		if err != nil {
			t.Fatal(err)
		}
		actx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { _ = a.Run(actx); close(done) }()
		defer func() { stop(); <-done }()
	}
	cl := api.NewClient(c.Conn(), time.Minute)
	port := testkit.FreePort(t)
	if _, err := cl.CreateTask(ctx, commands.CreateTask{TaskID: "flower", Host: "127.0.0.1", Port: port, SelectionCriteria: `"camera" in sensors`,
		FilesPaths: []string{"client.py", "task.py", "flmngr_reporter.py"}, Tags: []string{"flower"}}); err != nil {
		t.Fatal(err)
	}
	var refs []events.FileRef
	for _, f := range sources {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := c.Files.Put(ctx, "flower", filepath.Base(f), fh)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	if _, err := cl.RecordTaskFiles(ctx, commands.RecordTaskFiles{TaskID: "flower", Files: refs}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartTask(ctx, commands.StartTask{TaskID: "flower"}); err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		task, err := cl.Task(ctx, "flower")
		if err != nil {
			t.Fatal(err)
		}
		if !task.Status.Busy() {
			if task.Status != commands.StatusFinished || task.Round != 3 {
				t.Fatalf("the Flower task ended %s after round %d: %s", task.Status, task.Round, task.LastError)
			}
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the Flower task did not finish in time")
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
