package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/testkit"
)

// originalPage calls the original's endpoints as its web pages do
// (cloud_web_interface/js/*.js): fetch with mode "cors", a JSON body and
// no credentials, and a FormData upload. Each call resolves to
// "<status> <body>", or "error <message>" when the browser hides the
// reply (a CORS refusal).
const originalPage = `<!doctype html><html><body><script>
async function call(host, fn, body) {
  try {
    const r = await fetch('http://' + host + '/' + fn, {method: 'POST', mode: 'cors',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    return r.status + ' ' + JSON.stringify(await r.json());
  } catch (e) { return 'error ' + e; }
}
async function upload(host, taskId, name, text) {
  const formData = new FormData();
  formData.append('task_id', taskId);
  formData.append('files', new File([text], name));
  try {
    const r = await fetch('http://' + host + '/upload_files', {method: 'POST', mode: 'cors', body: formData});
    return r.status + ' ' + JSON.stringify(await r.json());
  } catch (e) { return 'error ' + e; }
}
</script></body></html>`

// TestOriginalPagesInABrowser serves a page of another origin that calls
// the gateway as the original's pages do, in headless Chromium: in legacy
// mode every call works; from a network that is not open it gets 401 and
// can read it (CORS headers on the refusal); in token mode with no origin
// allowed the browser hides the reply.
func TestOriginalPagesInABrowser(t *testing.T) {
	path := testkit.Chromium(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(originalPage))
	}))
	defer page.Close()

	ctx := browserContext(t, path, 120*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(page.URL)); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAsValue, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	expect := func(what, got, prefix string, contains ...string) {
		t.Helper()
		if !strings.HasPrefix(got, prefix) {
			t.Fatalf("%s: %s, want %s…", what, got, prefix)
		}
		for _, c := range contains {
			if !strings.Contains(got, c) {
				t.Fatalf("%s: %s, want it to contain %s", what, got, c)
			}
		}
	}
	host := func(e *env) string { return strings.TrimPrefix(e.base, "http://") }
	create := `{task_id: '4fe5', host: 'localhost', port: 8080, username: 'user', password: '123', files_paths: ['client.py', 'task.py'],
		selection_criteria: '"camera" in sensors', server_arguments: '', client_arguments: '', tags: ['mnist']}`

	// Legacy mode, the page's network open: the original's flows work.
	open := legacyEnv(t, "127.0.0.0/8,::1")
	h := host(open)
	expect("create", eval(`call('`+h+`', 'rpc_exec_create_task', `+create+`)`), "200 null")
	expect("create again", eval(`call('`+h+`', 'rpc_exec_create_task', `+create+`)`), "500", "UNIQUE constraint failed")
	expect("upload", eval(`upload('`+h+`', '4fe5', 'server.py', 'print(1)')`), "200", "Files uploaded successfully", "server.py")
	expect("get task", eval(`call('`+h+`', 'rpc_exec_get_task_by_id', {task_id: '4fe5'})`), "200", `"ID":"4fe5"`, `"tags":["mnist"]`)
	expect("get user", eval(`call('`+h+`', 'rpc_exec_get_user_info', {user_id: 'nobody'})`), "500", "User with ID=nobody not registered")
	expect("stop", eval(`call('`+h+`', 'rpc_exec_stop_server_task', {task_id: '4fe5'})`), "500", "Task with ID=4fe5 not found")
	expect("start", eval(`call('`+h+`', 'rpc_exec_start_server_task', {task_id: '4fe5'})`), "200 null")

	// Legacy mode, the page's network not open: 401, readable.
	closed := legacyEnv(t, "10.9.0.0/16")
	h = host(closed)
	expect("create from a closed network", eval(`call('`+h+`', 'rpc_exec_create_task', `+create+`)`), "401", "admin token is required")
	expect("upload from a closed network", eval(`upload('`+h+`', '4fe5', 'server.py', 'print(1)')`), "401", "admin token is required")

	// Token mode with the page's origin allowed: 401, readable.
	allowed := deployWith(t, cloud.Config{CORSOrigins: []string{page.URL}})
	expect("create in token mode, origin allowed", eval(`call('`+host(allowed)+`', 'rpc_exec_create_task', `+create+`)`), "401", "admin token is required")

	// Token mode by default: no origin is allowed, the browser hides the reply.
	tokenOnly := deploy(t, false)
	expect("create in token mode", eval(`call('`+host(tokenOnly)+`', 'rpc_exec_create_task', `+create+`)`), "error TypeError")
	expect("upload in token mode", eval(`upload('`+host(tokenOnly)+`', '4fe5', 'server.py', 'x')`), "error TypeError")
	if code, b := tokenOnly.json("POST", "/rpc_exec_get_task_by_id", "admin", `{"task_id":"4fe5"}`); code != 500 {
		t.Fatalf("the hidden create was not refused: %d %s", code, b)
	}
}
