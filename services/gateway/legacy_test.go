package gateway_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/gateway"
)

// originalCreate is the original's example task (create_and_run_server_task.py).
const originalCreate = `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["client.py","task.py"]}`

// legacyEnv deploys a gateway whose original endpoints are open to the
// given networks.
func legacyEnv(t *testing.T, networks string, origins ...string) *env {
	t.Helper()
	open, err := gateway.ParseNetworks(networks)
	if err != nil {
		t.Fatal(err)
	}
	return deployWith(t, cloud.Config{LegacyOpen: open, CORSOrigins: origins})
}

// expectCORS checks the headers a page of another origin needs to read a reply.
func expectCORS(t *testing.T, what string, h http.Header, origin string) {
	t.Helper()
	if h.Get("Access-Control-Allow-Origin") != origin || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Fatalf("%s: CORS headers %v, want origin %q", what, h, origin)
	}
}

// TestLegacyModeOpensTheOriginalEndpointsOnly calls the original's
// endpoints without a token from an open network (the test's loopback):
// they answer as the original did, with CORS headers, and are counted;
// the REST API still needs the token; hostile input is still refused.
func TestLegacyModeOpensTheOriginalEndpointsOnly(t *testing.T) {
	e := legacyEnv(t, "127.0.0.0/8,::1")
	call := func(fn, body string) (int, http.Header, string) {
		t.Helper()
		code, h, b := e.do("POST", "/"+fn, "none", strings.NewReader(body), "application/json")
		expectCORS(t, fn, h, "*")
		return code, h, strings.TrimSpace(string(b))
	}
	if code, _, b := call("rpc_exec_create_task", originalCreate); code != 200 || b != "null" {
		t.Fatalf("create without a token: %d %s", code, b)
	}
	if code, _, b := call("rpc_exec_create_task", originalCreate); code != 500 || b != `"UNIQUE constraint failed: tasks.ID"` {
		t.Fatalf("create again: %d %s", code, b)
	}
	if code, _, b := call("rpc_exec_get_task_by_id", `{"task_id":"4fe5"}`); code != 200 || !strings.Contains(b, `"ID":"4fe5"`) {
		t.Fatalf("get without a token: %d %s", code, b)
	}
	if code, _, b := call("rpc_exec_update_user_info", `{"user_id":"guilhermeeec","data_qnt":0,"sensors":["camera","ecu"]}`); code != 200 {
		t.Fatalf("update user without a token: %d %s", code, b)
	}
	body, ct := multipartBody(t, map[string]string{"task_id": "4fe5"}, map[string]string{"server.py": "print('s')\n"})
	code, h, b := e.do("POST", "/upload_files", "none", body, ct)
	expectCORS(t, "upload", h, "*")
	if code != 200 || !strings.Contains(string(b), "Files uploaded successfully") {
		t.Fatalf("upload without a token: %d %s", code, b)
	}

	// Only the original's endpoints are open.
	for _, c := range [][2]string{{"GET", "/api/v1/tasks"}, {"POST", "/api/v1/tasks/4fe5/start"}, {"GET", "/metrics"}} {
		if code, _ := e.json(c[0], c[1], "none", ""); code != http.StatusUnauthorized {
			t.Fatalf("%s %s without a token in legacy mode: %d", c[0], c[1], code)
		}
	}

	// Hostile input gets what it gets in token mode.
	if code, _, b := call("rpc_exec_launch_rockets", `{}`); code != 404 {
		t.Fatalf("unknown function: %d %s", code, b)
	}
	if code, _, b := call("rpc_exec_create_task", `{"task_id":"../x","host":"h","port":1,"username":"u","password":"p","files_paths":[]}`); code != 400 {
		t.Fatalf("task id ../x: %d %s", code, b)
	}
	if code, _, b := call("rpc_exec_create_task", `{"task_id":"x1","host":"h","port":1,"username":"u","password":"p","files_paths":["../../etc/passwd"]}`); code != 400 || !strings.Contains(b, "escapes") {
		t.Fatalf("files_paths ../../etc/passwd: %d %s", code, b)
	}
	if code, _, b := call("rpc_exec_create_task", `{"task_id":"x2","host":"h","port":1,"username":"u","password":"p","files_paths":[],"selection_criteria":"__import__('os')"}`); code != 400 {
		t.Fatalf("a Python criterion: %d %s", code, b)
	}
	if code, _, b := call("rpc_exec_get_task_by_id", `{"task_id":"`+strings.Repeat("a", 2<<20)+`"}`); code != 400 {
		t.Fatalf("a 2 MiB body: %d %.100s", code, b)
	}
	for name, task := range map[string]string{"../../etc/x": "4fe5", "a.py": "../x"} {
		body, ct := multipartBody(t, map[string]string{"task_id": task}, map[string]string{name: "x"})
		code, h, b := e.do("POST", "/upload_files", "none", body, ct)
		expectCORS(t, "hostile upload", h, "*")
		if code != 400 {
			t.Fatalf("upload of %s for task %s: %d %s", name, task, code, b)
		}
	}

	// What was let in is counted.
	code, b = e.json("GET", "/metrics", "admin", "")
	if code != 200 || !strings.Contains(string(b), "flmngr_legacy_open 1") ||
		!strings.Contains(string(b), `flmngr_legacy_calls_total{endpoint="rpc_exec_create_task"} 5`) ||
		!strings.Contains(string(b), `flmngr_legacy_calls_total{endpoint="upload_files"} 3`) {
		t.Fatalf("metrics: %d %s", code, grepLines(string(b), "flmngr_legacy"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// TestLegacyModeRefusesOtherNetworks opens the original's endpoints to a
// network the test is not on: every call without a token is refused with
// 401 and the CORS headers a page needs to see it, whatever header
// claims another address.
func TestLegacyModeRefusesOtherNetworks(t *testing.T) {
	e := legacyEnv(t, "10.9.0.0/16")
	req := func(method, path string, body string, ct string) (int, http.Header, string) {
		t.Helper()
		r, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		r.Header.Set("X-Forwarded-For", "10.9.0.7")
		r.Header.Set("X-Real-IP", "10.9.0.7")
		r.Header.Set("Forwarded", "for=10.9.0.7")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	for _, fn := range []string{"rpc_exec_create_task", "rpc_exec_get_task_by_id", "rpc_exec_client_requesting_task"} {
		code, h, b := req("POST", "/"+fn, originalCreate, "application/json")
		expectCORS(t, fn, h, "*")
		if code != http.StatusUnauthorized || !strings.Contains(b, "admin token is required") {
			t.Fatalf("%s from another network: %d %s", fn, code, b)
		}
	}
	body, ct := multipartBody(t, map[string]string{"task_id": "4fe5"}, map[string]string{"a.py": "x"})
	code, h, b := req("POST", "/upload_files", body.String(), ct)
	expectCORS(t, "upload", h, "*")
	if code != http.StatusUnauthorized {
		t.Fatalf("upload from another network: %d %s", code, b)
	}
	code, h, b = req("GET", "/download/4fe5/a.py", "", "")
	expectCORS(t, "download", h, "*")
	if code != http.StatusUnauthorized || h.Get("WWW-Authenticate") != `Basic realm="Login Required"` {
		t.Fatalf("download without credentials: %d %s", code, b)
	}
	// The token still works from anywhere.
	if code, b := e.json("POST", "/rpc_exec_create_task", "admin", originalCreate); code != 200 {
		t.Fatalf("create with the token: %d %s", code, b)
	}
}

// TestTokenModeCORS: without legacy mode no origin may read the original
// endpoints' replies unless listed; a listed one may, refusals included.
func TestTokenModeCORS(t *testing.T) {
	e := deployWith(t, cloud.Config{CORSOrigins: []string{"http://pages.example:8000"}})
	for _, c := range []struct{ origin, want string }{{"http://pages.example:8000", "http://pages.example:8000"}, {"http://evil.example", ""}, {"", ""}} {
		r, _ := http.NewRequest("POST", e.base+"/rpc_exec_create_task", strings.NewReader(originalCreate))
		r.Header.Set("Content-Type", "application/json")
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("create without a token from %q: %d", c.origin, res.StatusCode)
		}
		expectCORS(t, "token mode from "+c.origin, res.Header, c.want)
		if !slices.Contains(res.Header.Values("Vary"), "Origin") {
			t.Fatalf("no Vary: Origin: %v", res.Header)
		}
	}
	// And by default, none.
	d := deploy(t, false)
	code, h, _ := d.do("OPTIONS", "/rpc_exec_create_task", "none", nil, "")
	if code != 200 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("token mode preflight: %d %v", code, h)
	}
}

func TestParseNetworks(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"10.1.2.3/8", "10.0.0.0/8"},
		{" 192.168.1.5 , 10.0.0.0/8", "192.168.1.5/32,10.0.0.0/8"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{"fd00::/8,::1", "fd00::/8,::1/128"},
		{"10.0.0.0/8,10.0.0.0/8", "10.0.0.0/8"},
		{"", ""},
	} {
		got, err := gateway.ParseNetworks(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		s := make([]string, len(got))
		for i, p := range got {
			s[i] = p.String()
		}
		if strings.Join(s, ",") != c.want {
			t.Fatalf("%q: %v, want %s", c.in, s, c.want)
		}
	}
	for _, bad := range []string{"0.0.0.0/0", "::/0", "example.com", "10.0.0.0/33", "10.0.0.0/", "::ffff:0.0.0.0/8", "10.0.0.1%eth0/8", "*"} {
		if got, err := gateway.ParseNetworks(bad); err == nil {
			t.Fatalf("%q accepted: %v", bad, got)
		}
	}
}

func TestParseOrigins(t *testing.T) {
	got, err := gateway.ParseOrigins("http://10.0.0.5:8000, https://Pages.Example,*")
	if err != nil || strings.Join(got, " ") != "http://10.0.0.5:8000 https://pages.example *" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"pages.example", "ftp://x", "http://x/path", "http://u:p@x", "http://x?q", "null"} {
		if got, err := gateway.ParseOrigins(bad); err == nil {
			t.Fatalf("%q accepted: %v", bad, got)
		}
	}
}
