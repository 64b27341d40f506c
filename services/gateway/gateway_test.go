package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/cloud"
)

type env struct {
	t     *testing.T
	base  string
	token string
	cloud *cloud.Cloud
}

func deploy(t *testing.T, openReads bool) *env {
	t.Helper()
	return deployWith(t, cloud.Config{OpenReads: openReads})
}

// deployWith deploys a cloud with a gateway, cfg's gateway settings
// (OpenReads, LegacyOpen, CORSOrigins) and a fast password hash when cfg
// has one.
func deployWith(t *testing.T, cfg cloud.Config) *env {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	cfg.DataDir, cfg.Listen, cfg.Gateway, cfg.Name = data, "127.0.0.1:0", "127.0.0.1:0", "gw"
	c, err := cloud.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	info, err := os.Stat(filepath.Join(data, "admin-token"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("admin token file: %v %v", info.Mode(), err)
	}
	if !c.TokenCreated || len(c.AdminToken) < 32 {
		t.Fatalf("token: %v %q", c.TokenCreated, c.AdminToken)
	}
	return &env{t: t, base: c.GatewayURL(), token: c.AdminToken, cloud: c}
}

// do sends a request; auth is "admin", "none" or a token.
func (e *env) do(method, path, auth string, body io.Reader, contentType string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	switch auth {
	case "admin":
		req.Header.Set("Authorization", "Bearer "+e.token)
	case "none":
	default:
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

func (e *env) json(method, path, auth, body string) (int, []byte) {
	e.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	code, _, b := e.do(method, path, auth, r, "application/json")
	return code, b
}

type apiError struct {
	Error struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

func (e *env) expectError(code int, b []byte, wantCode int, kind, field string) {
	e.t.Helper()
	var ae apiError
	if err := json.Unmarshal(b, &ae); err != nil || code != wantCode || ae.Error.Kind != kind || ae.Error.Field != field {
		e.t.Fatalf("got %d %s, want %d %s on %q", code, b, wantCode, kind, field)
	}
}

func multipartBody(t *testing.T, fields map[string]string, files map[string]string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	for name, content := range files {
		f, err := w.CreateFormFile("files", name)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte(content))
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

func TestRESTStatusCodes(t *testing.T) {
	e := deploy(t, false)
	code, b := e.json("GET", "/api/v1/tasks", "none", "")
	e.expectError(code, b, 401, "unauthorized", "")
	code, b = e.json("GET", "/api/v1/tasks", strings.Repeat("x", 64), "")
	e.expectError(code, b, 403, "forbidden", "")

	code, b = e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"t1","host":"localhost","port":8080,"selection_criteria":"\"camera\" in sensors","tags":["mnist"]}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	code, b = e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"t1","host":"localhost","port":8080}`)
	e.expectError(code, b, 409, "conflict", "")
	code, b = e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"t2","host":"localhost","port":8080,"selection_criteria":"aaaaa"}`)
	e.expectError(code, b, 400, "invalid", "selection_criteria")
	code, b = e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"t2","host":"localhost","port":"x"}`)
	e.expectError(code, b, 400, "invalid", "port")
	code, b = e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"t2","host":"localhost","port":1,"colour":"red"}`)
	e.expectError(code, b, 400, "invalid", "colour")
	code, _ = e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"t2","host":"`+strings.Repeat("h", 2<<20)+`","port":1}`)
	if code != 413 {
		t.Fatalf("a 2 MiB body: %d", code)
	}
	code, b = e.json("GET", "/api/v1/tasks/zzzz", "admin", "")
	e.expectError(code, b, 404, "not_found", "")
	code, b = e.json("POST", "/api/v1/tasks/t1/start", "admin", "")
	e.expectError(code, b, 409, "conflict", "")
	code, b = e.json("POST", "/api/v1/tasks/t1/stop", "admin", "")
	e.expectError(code, b, 409, "conflict", "")
	code, b = e.json("PATCH", "/api/v1/tasks/t1", "admin", `{"port":9090}`)
	if code != 200 {
		t.Fatalf("update: %d %s", code, b)
	}
	code, b = e.json("PATCH", "/api/v1/tasks/t1", "admin", `{"limits":"memory=lots"}`)
	e.expectError(code, b, 400, "invalid", "limits")
	code, b = e.json("PATCH", "/api/v1/tasks/t1", "admin", `{"limits":"walltime=120m,memory=512MiB"}`)
	if code != 200 {
		t.Fatalf("update limits: %d %s", code, b)
	}
	if code, b = e.json("GET", "/api/v1/tasks/t1", "admin", ""); code != 200 || !strings.Contains(string(b), `"limits":"memory=512MiB,walltime=2h"`) {
		t.Fatalf("the task's limits: %d %s", code, b)
	}
	code, b = e.json("GET", "/api/v1/nothing/here", "admin", "")
	e.expectError(code, b, 404, "not_found", "")

	body, ct := multipartBody(t, nil, map[string]string{"server.py": "print('hi')\n"})
	code, _, b = e.do("POST", "/api/v1/tasks/t1/files", "admin", body, ct)
	if code != 200 || !strings.Contains(string(b), `"name":"server.py"`) {
		t.Fatalf("upload: %d %s", code, b)
	}
	body, ct = multipartBody(t, nil, map[string]string{"../evil.py": "x"})
	code, _, b = e.do("POST", "/api/v1/tasks/t1/files", "admin", body, ct)
	e.expectError(code, b, 400, "invalid", "files")
	code, b = e.json("GET", "/api/v1/tasks/t1/files", "admin", "")
	if code != 200 || !strings.Contains(string(b), "server.py") {
		t.Fatalf("files: %d %s", code, b)
	}
	body, ct = multipartBody(t, nil, map[string]string{"a.py": "a", "b.py": "b"})
	if code, _, b = e.do("POST", "/api/v1/tasks/t1/files", "admin", body, ct); code != 200 {
		t.Fatalf("upload: %d %s", code, b)
	}
	var names []string
	for path := "/api/v1/tasks/t1/files?limit=2"; path != ""; {
		code, h, b := e.do("GET", path, "admin", nil, "")
		var fs []struct{ Name string }
		if json.Unmarshal(b, &fs); code != 200 || len(fs) == 0 || len(fs) > 2 {
			t.Fatalf("files page %s: %d %s", path, code, b)
		}
		for _, f := range fs {
			names = append(names, f.Name)
		}
		path = ""
		if next := h.Get("X-Next-Page"); next != "" {
			path = "/api/v1/tasks/t1/files?limit=2&after=" + next
		}
	}
	if strings.Join(names, ",") != "a.py,b.py,server.py" {
		t.Fatalf("files paged by name: %v", names)
	}
	code, b = e.json("GET", "/api/v1/tasks?tag=mnist", "admin", "")
	var tasks []map[string]any
	if json.Unmarshal(b, &tasks); code != 200 || len(tasks) != 1 || tasks[0]["id"] != "t1" {
		t.Fatalf("list by tag: %d %s", code, b)
	}
	if strings.Contains(string(b), "password_hash") {
		t.Fatal("a task listing carries the password hash")
	}
	code, b = e.json("GET", "/api/v1/timeline?limit=2", "admin", "")
	var page struct {
		Entries []map[string]any `json:"entries"`
		Next    uint64           `json:"next"`
	}
	if json.Unmarshal(b, &page); code != 200 || len(page.Entries) != 2 || page.Next == 0 {
		t.Fatalf("timeline page: %d %s", code, b)
	}
	code, b = e.json("GET", "/api/v1/timeline?after=x", "admin", "")
	e.expectError(code, b, 400, "invalid", "after")
	code, b = e.json("GET", "/metrics", "admin", "")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, b)
	}
	for _, want := range []string{`flmngr_tasks{state="idle"} 1`, `flmngr_events_appended_total{type="task.created.v1"} 1`, "flmngr_command_duration_seconds_bucket", "flmngr_supervisor_spawns_total"} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("metrics lack %q:\n%s", want, b)
		}
	}
	code, b = e.json("DELETE", "/api/v1/tasks/t1", "admin", "")
	if code != 200 {
		t.Fatalf("delete: %d %s", code, b)
	}
}

func TestOpenReadsAndLogin(t *testing.T) {
	e := deploy(t, true)
	if code, b := e.json("GET", "/api/v1/tasks", "none", ""); code != 200 {
		t.Fatalf("open read: %d %s", code, b)
	}
	code, b := e.json("POST", "/api/v1/tasks", "none", `{"task_id":"t1","host":"h","port":1}`)
	e.expectError(code, b, 401, "unauthorized", "")
	code, b = e.json("POST", "/api/v1/login", "none", `{"token":"wrong"}`)
	e.expectError(code, b, 403, "forbidden", "token")
	code, h, _ := e.do("POST", "/api/v1/login", "none", strings.NewReader(`{"token":"`+e.token+`"}`), "application/json")
	cookie := h.Get("Set-Cookie")
	if code != 204 || !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Strict") {
		t.Fatalf("login: %d %q", code, cookie)
	}
	req, _ := http.NewRequest("POST", e.base+"/api/v1/tasks", strings.NewReader(`{"task_id":"t1","host":"h","port":1}`))
	req.Header.Set("Cookie", strings.Split(cookie, ";")[0])
	req.Header.Set("Origin", e.base)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("create with the cookie: %v %v", res.StatusCode, err)
	}
	res.Body.Close()
}

// TestUnavailableIsBounded stops the services under the gateway: calls
// answer 503 within their time bound instead of hanging.
func TestUnavailableIsBounded(t *testing.T) {
	e := deploy(t, false)
	e.cloud.StopServices()
	start := time.Now()
	code, b := e.json("GET", "/api/v1/tasks", "admin", "")
	e.expectError(code, b, 503, "unavailable", "")
	code, b = e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"t1","host":"h","port":1}`)
	e.expectError(code, b, 503, "unavailable", "")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("took %s", took)
	}
}

// readSSE reads events from a stream until n were read or the body ends.
func readSSE(t *testing.T, body io.Reader, n int) []uint64 {
	t.Helper()
	var ids []uint64
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for len(ids) < n && sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			var id uint64
			fmt.Sscan(v, &id)
			ids = append(ids, id)
		}
	}
	return ids
}

// TestEventStreamResumesWithoutGapsOrDuplicates reads part of the event
// stream, drops the connection, appends more and resumes with
// Last-Event-ID: every event arrives once, in order.
func TestEventStreamResumesWithoutGapsOrDuplicates(t *testing.T) {
	e := deploy(t, false)
	create := func(i int) {
		if code, b := e.json("POST", "/api/v1/tasks", "admin", fmt.Sprintf(`{"task_id":"t%d","host":"h","port":%d}`, i, i+1)); code != 201 {
			t.Fatalf("create: %d %s", code, b)
		}
	}
	for i := range 20 {
		create(i)
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+"/api/v1/events/stream?since=0", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %v %v", res, err)
	}
	first := readSSE(t, res.Body, 12)
	cancel()
	res.Body.Close()
	for i := 20; i < 30; i++ {
		create(i)
	}
	req, _ = http.NewRequest("GET", e.base+"/api/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Last-Event-ID", fmt.Sprint(first[len(first)-1]))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	rest := readSSE(t, res.Body, 18)
	all := append(first, rest...)
	for i, id := range all {
		if id != uint64(i+1) {
			t.Fatalf("event ids %v: gap or duplicate at %d", all, i)
		}
	}
}

// A client that retries a command with the same Idempotency-Key header
// (after a lost reply, say) gets the first answer again and nothing is
// appended twice.
func TestIdempotencyKeyHeader(t *testing.T) {
	e := deploy(t, false)
	send := func(key, body string) (int, []byte) {
		req, _ := http.NewRequest("POST", e.base+"/api/v1/tasks", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+e.token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	const body = `{"task_id":"k1","host":"localhost","port":8080}`
	var first struct {
		Seq    uint64 `json:"seq"`
		Events []any  `json:"events"`
	}
	code, b := send("create-k1", body)
	if json.Unmarshal(b, &first); code != 201 || len(first.Events) != 1 {
		t.Fatalf("first create: %d %s", code, b)
	}
	for range 5 {
		var again struct {
			Seq      uint64 `json:"seq"`
			Events   []any  `json:"events"`
			Replayed bool   `json:"replayed"`
		}
		code, b := send("create-k1", body)
		if json.Unmarshal(b, &again); code != 201 || !again.Replayed || again.Seq != first.Seq || len(again.Events) != 0 {
			t.Fatalf("repeated create: %d %s, want the first answer (seq %d) replayed", code, b, first.Seq)
		}
	}
	// Without the key the repeat is a conflict, as it should be.
	code, b = e.json("POST", "/api/v1/tasks", "admin", body)
	e.expectError(code, b, 409, "conflict", "")
	code, b = send("a key with spaces", body)
	e.expectError(code, b, 400, "invalid", "Idempotency-Key")
}
