package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/flmngr/flmngr/services/testkit"
)

// TestConsoleSignInAndOutInABrowser signs the console in through its
// form, writes from the page (its fetch sends the page's Origin), signs
// out with its button, and finds the session over: whoami says so and a
// write from the page is refused.
func TestConsoleSignInAndOutInABrowser(t *testing.T) {
	path := testkit.Chromium(t)
	e := deploy(t, false)
	ctx := browserContext(t, path, 90*time.Second)
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	const whoami = `fetch('/api/v1/whoami').then(r => r.json()).then(w => String(w.admin))`
	create := func(id string) string {
		return eval(`fetch('/api/v1/tasks', {method: 'POST', headers: {'Content-Type': 'application/json'},
			body: JSON.stringify({task_id: '` + id + `', host: 'h', port: 1})}).then(r => String(r.status))`)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/#/login"),
		chromedp.WaitVisible(chromedp.ID("f-token")),
		chromedp.SendKeys(chromedp.ID("f-token"), e.token),
		chromedp.Click(chromedp.CSS("#login-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("tasks-h"))); err != nil {
		t.Fatalf("sign in: %v", err)
	}
	if got := eval(whoami); got != "true" {
		t.Fatalf("signed in, whoami says admin %s", got)
	}
	if got := create("b1"); got != "201" {
		t.Fatalf("a write from the signed-in page: %s", got)
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/#/login"),
		chromedp.WaitVisible(chromedp.CSS("#login-form .notice")),
		chromedp.Click(chromedp.CSS("#login-form button[type=button]")),
		chromedp.WaitNotPresent(chromedp.CSS("#login-form .notice"))); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	if got := eval(whoami); got != "false" {
		t.Fatalf("signed out, whoami says admin %s", got)
	}
	if got := create("b2"); got != "401" {
		t.Fatalf("a write from the signed-out page: %s", got)
	}
}

// browserContext starts headless chromium at path for one test, closed
// when the test ends, and bounds it by timeout.
func browserContext(t *testing.T, path string, timeout time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() { cancelTime(); cancel(); cancelAlloc() })
	return ctx
}
