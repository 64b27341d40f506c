package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flmngr/flmngr/services/testkit"
	"github.com/flmngr/flmngr/tasks/fedavg"
)

// artifacts is where the browser tests leave their screenshots.
func artifacts(t *testing.T) string {
	dir := os.Getenv("FLMNGR_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestConsoleInARealBrowser drives the web console in headless Chromium:
// it signs in with the admin token, sees a bad criterion refused next to
// its field, creates a FedAvg task through the form, uploads its file,
// starts it, watches the dashboard turn it running and then finished, and
// finds the accuracy chart drawn. It saves screenshots of the dashboard and
// of the task page.
func TestConsoleInARealBrowser(t *testing.T) {
	browser := testkit.Chromium(t)
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "data")
	listen := testkit.FreeAddr(t)
	_, base := startUpHTTP(t, data, listen)
	if base == "" {
		t.Fatal("flmngr up did not print its HTTP address")
	}
	token, err := os.ReadFile(filepath.Join(data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"site-1", "site-2"} {
		agent := exec.Command(bin, "client", "--id", id, "--sensors", "camera", "--data-qnt", "30000", "--nats", "nats://"+listen, "--creds", clientKey(t, data, listen, id),
			"--workdir", filepath.Join(t.TempDir(), id), "--log-level", "warn")
		agent.Stderr = os.Stderr
		if err := agent.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1000))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		t.Logf("browser: %s", what)
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(what string, sel chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(ctx, sel)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(artifacts(t), name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	until := func(what, js string) {
		t.Helper()
		t.Logf("browser: %s", what)
		err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(90*time.Second)))
		if err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.hash + "\n" + document.body.innerText`))
			shot("console-failure.png")
			t.Fatalf("%s: %v\npage:\n%s", what, err, page)
		}
	}
	id := func(s string) chromedp.ID { return chromedp.ID(s) }

	do("sign in",
		chromedp.Navigate(base+"/#/login"),
		chromedp.WaitVisible(id("f-token")),
		chromedp.SendKeys(id("f-token"), strings.TrimSpace(string(token))),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(id("tasks-h")))
	until("both clients on the dashboard", `document.querySelectorAll('#clients tbody tr').length === 2`)

	port := strings.Split(testkit.FreeAddr(t), ":")[1]
	do("a bad criterion is refused next to its field",
		chromedp.Navigate(base+"/#/new"),
		chromedp.WaitVisible(id("f-id")),
		chromedp.SendKeys(id("f-id"), "ui-fedavg"),
		chromedp.SendKeys(id("f-host"), "127.0.0.1"),
		chromedp.SendKeys(id("f-port"), port),
		chromedp.SendKeys(id("f-criterion"), "aaaaa"),
		chromedp.Click(chromedp.CSS("#create-form button[type=submit]")),
		chromedp.WaitVisible(id("f-criterion-err")))
	msg := text("read the error", chromedp.Text(id("f-criterion-err")))
	invalid, err := chromedp.Run(ctx, chromedp.AttributeValue(id("f-criterion"), "aria-invalid"))
	if err != nil || !strings.Contains(msg, "unknown name aaaaa") || invalid.Value != "true" {
		t.Fatalf("criterion error %q (aria-invalid %q, %v)", msg, invalid.Value, err)
	}
	shot("console-validation.png")

	do("create the task through the form",
		chromedp.SetValue(id("f-criterion"), `"camera" in sensors && data_qnt > 0`),
		chromedp.SendKeys(id("f-files_paths"), "fedavg.json"),
		chromedp.SendKeys(id("f-tags"), "mnist, fedavg"),
		chromedp.SendKeys(id("f-server_command"), "{flmngr} fl server --listen {host}:{port} --config fedavg.json"),
		chromedp.SendKeys(id("f-client_command"), "{flmngr} fl client --server {host}:{port} --config fedavg.json"),
		chromedp.Click(chromedp.CSS("#create-form button[type=submit]")),
		chromedp.WaitVisible(id("task-props")))

	conf := fedavg.DefaultConfig()
	conf.Trigger = fedavg.NotifyTrigger
	settings := filepath.Join(t.TempDir(), fedavg.ConfigFile)
	if err := os.WriteFile(settings, conf.JSON(), 0o644); err != nil {
		t.Fatal(err)
	}
	do("upload its file",
		chromedp.SetUploadFiles(id("f-files"), []string{settings}),
		chromedp.Click(chromedp.CSS("#upload-form button[type=submit]")))
	until("the file is listed", `document.querySelector('#task-props').textContent.includes('fedavg.json (')`)

	// The task page re-renders as events arrive, so a node found by one
	// call may be gone by the next: find and click in one evaluation.
	until("start it", `(() => { const b = document.getElementById('start'); if (!b || b.disabled) return false; b.click(); return true; })()`)
	do("watch the dashboard", chromedp.Navigate(base+"/#/"), chromedp.WaitVisible(id("tasks")))
	until("the dashboard shows it running", `['start_requested', 'running', 'finished'].includes((document.querySelector('tr[data-task="ui-fedavg"]') || {dataset: {}}).dataset.status)`)
	until("the dashboard shows it finished", `(document.querySelector('tr[data-task="ui-fedavg"]') || {dataset: {}}).dataset.status === 'finished'`)
	until("the clients are done", `[...document.querySelectorAll('#clients tbody tr')].every(r => r.children[4].textContent === '—')`)
	if acc := text("read the accuracy", chromedp.Text(chromedp.CSS(`tr[data-task="ui-fedavg"] td:nth-of-type(4)`))); !strings.HasPrefix(acc, "0.") {
		t.Fatalf("dashboard accuracy %q", acc)
	}
	shot("console-dashboard.png")

	do("open the task page", chromedp.Navigate(base+"/#/tasks/ui-fedavg"), chromedp.WaitVisible(id("accuracy-chart")))
	until("the accuracy chart is drawn", `document.querySelectorAll('#accuracy-chart circle').length === 3 && document.querySelector('#accuracy-chart polyline.acc') !== null`)
	until("the timeline shows the run", `document.querySelector('#timeline').textContent.includes('task.finished.v1')`)
	until("the server's output is shown", `[...document.querySelectorAll('.logpane h4')].some(h => h.textContent === 'server')`)
	shot("console-task.png")
	fmt.Fprintf(os.Stderr, "screenshots in %s\n", artifacts(t))
}
