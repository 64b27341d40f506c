package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/testkit"
)

// A hundred thousand tasks list page by page, through the CLI and the
// REST API: every task once, with no message over the bus's limit.
func TestHundredThousandTasksPageByPage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: registers 100,000 tasks")
	}
	const n = 100_000
	ctx := context.Background()
	c, err := cloud.Open(ctx, cloud.Config{DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", Gateway: "127.0.0.1:0",
		Auth: true, Name: "pages", HashPassword: func(s string) (string, error) { return "h" + s, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed error
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				e, err := events.New(fmt.Sprintf("seed-%06d", i), "test", events.Task(fmt.Sprintf("t%06d", i)), time.Now(),
					&events.TaskCreated{TaskSpec: events.TaskSpec{Host: "127.0.0.1", Port: 9}})
				if err == nil {
					_, err = c.Log.Append(ctx, 0, e)
				}
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
	last, err := c.Log.LastSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := c.Views.WaitFor(wctx, last); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d tasks registered and in the views in %s", n, time.Since(start).Round(time.Millisecond))

	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	cmd := exec.Command(bin, "task", "list")
	cmd.Env = append(os.Environ(), "FLMNGR_NATS="+c.ClientURL(), "FLMNGR_CREDS="+c.OperatorCreds)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("task list: %v\n%s", err, errOut.String())
	}
	rows := 0
	listed := map[string]bool{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		id, _, _ := strings.Cut(sc.Text(), " ")
		if id == "ID" {
			continue
		}
		if listed[id] {
			t.Fatalf("task %s listed twice", id)
		}
		listed[id] = true
		rows++
	}
	if rows != n {
		t.Fatalf("flmngr task list printed %d tasks, want %d", rows, n)
	}
	t.Logf("flmngr task list printed %d tasks in %s", rows, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	seen := map[string]bool{}
	url := c.GatewayURL() + "/api/v1/tasks?limit=10000"
	for pages := 0; url != ""; pages++ {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+c.AdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page []struct {
			ID string `json:"id"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %v", pages, resp.StatusCode, err)
		}
		for _, p := range page {
			if seen[p.ID] {
				t.Fatalf("task %s listed twice", p.ID)
			}
			seen[p.ID] = true
		}
		url = ""
		if next := resp.Header.Get("X-Next-Page"); next != "" {
			url = c.GatewayURL() + "/api/v1/tasks?limit=10000&after=" + next
		}
	}
	if len(seen) != n {
		t.Fatalf("REST listed %d tasks, want %d", len(seen), n)
	}
	t.Logf("GET /api/v1/tasks listed %d tasks in pages of 10,000 in %s", len(seen), time.Since(start).Round(time.Millisecond))
}
