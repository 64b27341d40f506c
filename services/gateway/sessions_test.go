package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// login signs a console in and returns its Set-Cookie header.
func (e *env) login(header map[string]string) string {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.base+"/api/v1/login", strings.NewReader(`{"token":"`+e.token+`"}`))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		e.t.Fatalf("login: %d", res.StatusCode)
	}
	return res.Header.Get("Set-Cookie")
}

// withCookie sends a request with a cookie and the given headers.
func (e *env) withCookie(method, path, cookie string, body io.Reader, header map[string]string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.base+path, body)
	req.Header.Set("Cookie", cookie)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// TestConsoleSessions: login hands out a session id, not the token; the
// cookie authorizes reads, and writes only from the gateway's own origin
// with the body type their endpoint takes; logout ends the session.
func TestConsoleSessions(t *testing.T) {
	e := deploy(t, false)
	set := e.login(nil)
	cookie := strings.Split(set, ";")[0]
	id, ok := strings.CutPrefix(cookie, "flmngr_session=")
	if !ok || len(id) < 43 || strings.Contains(set, e.token) {
		t.Fatalf("session cookie %q", set)
	}
	for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(set, attr) {
			t.Fatalf("session cookie %q lacks %s", set, attr)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Fatalf("a cookie over plain HTTP is Secure: %q", set)
	}
	if set := e.login(map[string]string{"X-Forwarded-Proto": "https"}); !strings.Contains(set, "; Secure") {
		t.Fatalf("a cookie through an HTTPS proxy is not Secure: %q", set)
	}
	if other := strings.Split(e.login(nil), ";")[0]; other == cookie {
		t.Fatal("two logins got the same session")
	}

	json := map[string]string{"Content-Type": "application/json", "Origin": e.base}
	create := func(id string, header map[string]string) (int, []byte) {
		return e.withCookie("POST", "/api/v1/tasks", cookie, strings.NewReader(`{"task_id":"`+id+`","host":"h","port":1}`), header)
	}
	if code, b := e.withCookie("GET", "/api/v1/tasks", cookie, nil, nil); code != 200 {
		t.Fatalf("a read with the cookie: %d %s", code, b)
	}
	if code, b := create("c1", json); code != 201 {
		t.Fatalf("a write from the console: %d %s", code, b)
	}
	if code, b := create("c2", map[string]string{"Content-Type": "application/json", "Referer": e.base + "/#/new"}); code != 201 {
		t.Fatalf("a write from the console with a Referer and no Origin: %d %s", code, b)
	}
	refused := []struct {
		what   string
		header map[string]string
	}{
		{"a cross-origin text/plain post", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"}},
		{"a cross-origin JSON post", map[string]string{"Content-Type": "application/json", "Origin": "http://evil.example"}},
		{"another port of the same host", map[string]string{"Content-Type": "application/json", "Origin": "http://127.0.0.1:1"}},
		{"a null origin", map[string]string{"Content-Type": "application/json", "Origin": "null"}},
		{"a cross-origin Referer", map[string]string{"Content-Type": "application/json", "Referer": "http://evil.example/x"}},
		{"no Origin nor Referer", map[string]string{"Content-Type": "application/json"}},
		{"a same-origin text/plain post", map[string]string{"Content-Type": "text/plain", "Origin": e.base}},
		{"a same-origin form post", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.base}},
		{"a same-origin post without a type", map[string]string{"Origin": e.base}},
	}
	for _, c := range refused {
		code, b := create("x1", c.header)
		e.expectError(code, b, 403, "forbidden", "")
		if code, b := e.json("GET", "/api/v1/tasks/x1", "admin", ""); code != 404 {
			t.Fatalf("%s created the task: %d %s", c.what, code, b)
		}
	}
	// The original's RPCs take the cookie under the same rules.
	code, b := e.withCookie("POST", "/rpc_exec_create_task", cookie, strings.NewReader(`{"task_id":"x2","host":"h","port":1,"username":"u","password":"p","files_paths":[]}`),
		map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"})
	if code != 403 {
		t.Fatalf("a cross-origin RPC with the cookie: %d %s", code, b)
	}
	// A body-less write (start, stop, delete) needs the origin only.
	if code, b := e.withCookie("DELETE", "/api/v1/tasks/c2", cookie, nil, map[string]string{"Origin": e.base}); code != 200 {
		t.Fatalf("a delete from the console: %d %s", code, b)
	}
	if code, b := e.withCookie("DELETE", "/api/v1/tasks/c1", cookie, nil, map[string]string{"Origin": "http://evil.example"}); code != 403 {
		t.Fatalf("a cross-origin delete: %d %s", code, b)
	}

	// Uploads: multipart from the console's origin only.
	body, ct := formOf(t, nil, [][2]string{{"a.py", "a\n"}})
	if code, b := e.withCookie("POST", "/api/v1/tasks/c1/files", cookie, body, map[string]string{"Content-Type": ct, "Origin": e.base}); code != 200 {
		t.Fatalf("an upload from the console: %d %s", code, b)
	}
	body, ct = formOf(t, nil, [][2]string{{"b.py", "b\n"}})
	if code, b := e.withCookie("POST", "/api/v1/tasks/c1/files", cookie, body, map[string]string{"Content-Type": ct, "Origin": "http://evil.example"}); code != 403 {
		t.Fatalf("a cross-origin upload: %d %s", code, b)
	}
	body, ct = formOf(t, [][2]string{{"task_id", "c1"}}, [][2]string{{"b.py", "b\n"}})
	if code, b := e.withCookie("POST", "/upload_files", cookie, body, map[string]string{"Content-Type": ct, "Origin": "http://evil.example"}); code != 403 {
		t.Fatalf("a cross-origin upload to the original's form: %d %s", code, b)
	}
	if code, b := e.withCookie("POST", "/api/v1/tasks/c1/files", cookie, strings.NewReader(`{}`), json); code != 403 {
		t.Fatalf("an upload that is not multipart: %d %s", code, b)
	}

	// The admin token is no cookie.
	if code, b := e.withCookie("GET", "/api/v1/tasks", "flmngr_token="+e.token, nil, nil); code != 401 {
		t.Fatalf("the token as the old cookie: %d %s", code, b)
	}
	if code, b := e.withCookie("GET", "/api/v1/tasks", "flmngr_session="+e.token, nil, nil); code != 401 {
		t.Fatalf("the token as the session cookie: %d %s", code, b)
	}
	// Bearer tokens work as they did: no origin, no type needed.
	req, _ := http.NewRequest("POST", e.base+"/api/v1/tasks", strings.NewReader(`{"task_id":"b1","host":"h","port":1}`))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "text/plain")
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 201 {
		t.Fatalf("a Bearer write: %v %v", res, err)
	}

	// A cross-origin logout does not end the session.
	if code, b := e.withCookie("POST", "/api/v1/logout", cookie, nil, map[string]string{"Origin": "http://evil.example"}); code != 403 {
		t.Fatalf("a cross-origin logout: %d %s", code, b)
	}
	if code, b := e.withCookie("GET", "/api/v1/whoami", cookie, nil, nil); code != 200 || !strings.Contains(string(b), `"admin":true`) {
		t.Fatalf("whoami: %d %s", code, b)
	}
	if code, b := e.withCookie("POST", "/api/v1/logout", cookie, nil, json); code != 204 {
		t.Fatalf("logout: %d %s", code, b)
	}
	code, b = e.withCookie("GET", "/api/v1/tasks", cookie, nil, nil)
	e.expectError(code, b, 401, "unauthorized", "")
	code, b = create("c3", json)
	e.expectError(code, b, 401, "unauthorized", "")
	if code, b := e.withCookie("GET", "/api/v1/whoami", cookie, nil, nil); code != 200 || !strings.Contains(string(b), `"admin":false`) {
		t.Fatalf("whoami after logout: %d %s", code, b)
	}
}
