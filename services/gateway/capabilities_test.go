package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/cloud"
)

// fastHash keeps bcrypt cheap: downloads check the password each time.
func fastHash(s string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(s), bcrypt.MinCost)
	return string(h), err
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// longServer is a task server that starts and runs until stopped.
const longServer = "import json, time\nprint(json.dumps({'type': 'info', 'info': 'Started'}), flush=True)\ntime.sleep(600)\n"

type offered struct {
	ID         string   `json:"ID"`
	Username   string   `json:"username"`
	Password   *string  `json:"password"`
	FilesPaths []string `json:"files_paths"`
}

// offers asks for a client's offers as the original's edge gateway does.
func (e *env) offers(auth, user string) []offered {
	e.t.Helper()
	code, b := e.json("POST", "/rpc_exec_client_requesting_task", auth, `{"user_id":"`+user+`"}`)
	var out []offered
	if err := json.Unmarshal(b, &out); code != 200 || err != nil {
		e.t.Fatalf("requesting_task for %s: %d %s", user, code, b)
	}
	return out
}

// basicGet downloads a file as the original's edge agent does.
func (e *env) basicGet(path, user, pass string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.base+path, nil)
	req.SetBasicAuth(user, pass)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestOffersCarryDownloadCapabilities runs the original's edge path: a
// client asks for tasks, gets an offer whose password is a capability
// minted for it, and downloads the task's files with HTTP Basic auth. The
// capability lapses when the run ends; another client's capability, or
// one for another task, is refused; the task's own password keeps working
// and appears nowhere; the log holds only the capability's hash.
func TestOffersCarryDownloadCapabilities(t *testing.T) {
	e := deployWith(t, cloud.Config{HashPassword: fastHash})
	rpc := func(fn, body string) {
		t.Helper()
		if code, b := e.json("POST", "/"+fn, "admin", body); code != 200 {
			t.Fatalf("%s %s: %d %s", fn, body, code, b)
		}
	}
	upload := func(task string, files map[string]string) {
		t.Helper()
		body, ct := multipartBody(t, map[string]string{"task_id": task}, files)
		if code, _, b := e.do("POST", "/upload_files", "admin", body, ct); code != 200 {
			t.Fatalf("upload: %d %s", code, b)
		}
	}
	rpc("rpc_exec_create_task", `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123-secret-pw","files_paths":["client.py","task.py"],"selection_criteria":"\"camera\" in sensors","tags":["mnist","MLP","test"]}`)
	rpc("rpc_exec_create_task", `{"task_id":"bbbb","host":"localhost","port":8081,"username":"user","password":"123-secret-pw","files_paths":["client.py"],"selection_criteria":"\"gps\" in sensors"}`)
	upload("4fe5", map[string]string{"server.py": longServer, "client.py": "print('client')\n", "task.py": "# task\n"})
	upload("bbbb", map[string]string{"server.py": longServer, "client.py": "print('b')\n"})
	rpc("rpc_exec_update_user_info", `{"user_id":"guilhermeeec","data_qnt":0,"sensors":["camera","ecu"]}`)
	rpc("rpc_exec_update_user_info", `{"user_id":"other","data_qnt":0,"sensors":["gps"]}`)

	// No run, no offer.
	if got := e.offers("admin", "guilhermeeec"); len(got) != 0 {
		t.Fatalf("offers before the start: %+v", got)
	}
	rpc("rpc_exec_start_server_task", `{"task_id":"4fe5"}`)
	rpc("rpc_exec_start_server_task", `{"task_id":"bbbb"}`)
	var mine, theirs offered
	eventually(t, 20*time.Second, "offers after the starts", func() bool {
		a, b := e.offers("admin", "guilhermeeec"), e.offers("admin", "other")
		if len(a) == 1 && len(b) == 1 {
			mine, theirs = a[0], b[0]
			return true
		}
		return false
	})
	if mine.ID != "4fe5" || mine.Username != "user" || mine.Password == nil || theirs.ID != "bbbb" || theirs.Password == nil {
		t.Fatalf("offers: %+v %+v", mine, theirs)
	}
	capability := *mine.Password
	if !strings.HasPrefix(capability, "guilhermeeec.") || strings.Contains(capability, "123-secret-pw") {
		t.Fatalf("the offer's password is not a capability: %q", capability)
	}
	// Asked again, the client gets the same capability, not a new event.
	if again := e.offers("admin", "guilhermeeec"); len(again) != 1 || again[0].Password == nil || *again[0].Password != capability {
		t.Fatalf("second request: %+v", again)
	}
	// Without a credential (--open-reads would let it read), no capability.
	for _, f := range mine.FilesPaths {
		if code, got := e.basicGet("/download/4fe5/"+f, mine.Username, capability); code != 200 || got == "" {
			t.Fatalf("download of %s with the capability: %d %q", f, code, got)
		}
	}
	if code, got := e.basicGet("/download/4fe5/client.py", "user", "123-secret-pw"); code != 200 || got != "print('client')\n" {
		t.Fatalf("download with the task's password: %d %q", code, got)
	}
	refused := func(why, path, user, pass string) {
		t.Helper()
		if code, got := e.basicGet(path, user, pass); code != http.StatusUnauthorized || !strings.Contains(got, "Unauthorized access") {
			t.Fatalf("%s: %d %s", why, code, got)
		}
	}
	refused("another client's capability", "/download/4fe5/client.py", "user", *theirs.Password)
	refused("a capability of the client for another task", "/download/bbbb/client.py", "user", capability)
	refused("the capability with another username", "/download/4fe5/client.py", "someone", capability)
	refused("the capability under another client's name", "/download/4fe5/client.py", "user", "other"+strings.TrimPrefix(capability, "guilhermeeec"))
	forged := capability[:len(capability)-1] + "0"
	if forged == capability { // the secret ended in 0: change it still
		forged = capability[:len(capability)-1] + "1"
	}
	refused("a forged capability", "/download/4fe5/client.py", "user", forged)

	// The log records the capability's hash, never the secret or the password.
	var log strings.Builder
	if _, err := e.cloud.Log.Replay(context.Background(), eventlog.FollowOptions{}, func(ev events.Envelope) error {
		b, err := json.Marshal(ev)
		log.Write(b)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	raw := log.String()
	secret := capability[strings.LastIndex(capability, ".")+1:]
	if strings.Contains(raw, secret) || strings.Contains(raw, "123-secret-pw") || !strings.Contains(raw, "client.download_capability_issued.v1") {
		t.Fatalf("the log holds a secret, or no capability event")
	}

	// Revoked, the capability opens nothing; asked again, the client gets a new one.
	if code, b := e.json("DELETE", "/api/v1/clients/guilhermeeec/capabilities/4fe5?reason=lost", "admin", ""); code != 200 {
		t.Fatalf("revoke: %d %s", code, b)
	}
	refused("a revoked capability", "/download/4fe5/client.py", "user", capability)
	fresh := e.offers("admin", "guilhermeeec")
	if len(fresh) != 1 || fresh[0].Password == nil || *fresh[0].Password == capability {
		t.Fatalf("after the revocation: %+v", fresh)
	}
	capability = *fresh[0].Password
	if code, _ := e.basicGet("/download/4fe5/client.py", "user", capability); code != 200 {
		t.Fatalf("download with the new capability: %d", code)
	}

	// The run ends: the capability lapses; the task's password still opens.
	rpc("rpc_exec_stop_server_task", `{"task_id":"4fe5"}`)
	eventually(t, 20*time.Second, "the capability to lapse after the stop", func() bool {
		code, _ := e.basicGet("/download/4fe5/client.py", "user", capability)
		return code == http.StatusUnauthorized
	})
	if code, _ := e.basicGet("/download/4fe5/client.py", "user", "123-secret-pw"); code != 200 {
		t.Fatalf("download with the task's password after the stop: %d", code)
	}
	// A new run gets a new capability; the old one stays dead.
	eventually(t, 20*time.Second, "a start once the run stopped", func() bool {
		code, _ := e.json("POST", "/rpc_exec_start_server_task", "admin", `{"task_id":"4fe5"}`)
		return code == 200
	})
	eventually(t, 20*time.Second, "a new capability for the new run", func() bool {
		o := e.offers("admin", "guilhermeeec")
		return len(o) == 1 && o[0].Password != nil && *o[0].Password != capability
	})
	refused("the last run's capability", "/download/4fe5/client.py", "user", capability)
	rpc("rpc_exec_stop_server_task", `{"task_id":"4fe5"}`)
	rpc("rpc_exec_stop_server_task", `{"task_id":"bbbb"}`)
}

// TestOffersWithoutCredentialCarryNoCapability: with --open-reads anyone
// may ask for a client's offers, but the capability goes only to callers
// with the token (or on a legacy network).
func TestOffersWithoutCredentialCarryNoCapability(t *testing.T) {
	e := deployWith(t, cloud.Config{OpenReads: true, HashPassword: fastHash})
	for _, c := range []struct{ fn, body string }{
		{"rpc_exec_create_task", `{"task_id":"4fe5","host":"h","port":1,"username":"user","password":"pw","files_paths":["client.py"]}`},
		{"rpc_exec_update_user_info", `{"user_id":"u1","data_qnt":0,"sensors":[]}`},
	} {
		if code, b := e.json("POST", "/"+c.fn, "admin", c.body); code != 200 {
			t.Fatalf("%s: %d %s", c.fn, code, b)
		}
	}
	body, ct := multipartBody(t, map[string]string{"task_id": "4fe5"}, map[string]string{"server.py": longServer, "client.py": "x"})
	if code, _, b := e.do("POST", "/upload_files", "admin", body, ct); code != 200 {
		t.Fatalf("upload: %d %s", code, b)
	}
	if code, b := e.json("POST", "/rpc_exec_start_server_task", "admin", `{"task_id":"4fe5"}`); code != 200 {
		t.Fatalf("start: %d %s", code, b)
	}
	eventually(t, 20*time.Second, "an offer", func() bool { return len(e.offers("none", "u1")) == 1 })
	if o := e.offers("none", "u1"); o[0].Password != nil {
		t.Fatalf("a capability for a caller without a credential: %q", *o[0].Password)
	}
	if o := e.offers("admin", "u1"); o[0].Password == nil {
		t.Fatal("no capability for the admin")
	}
	if code, b := e.json("POST", "/rpc_exec_stop_server_task", "admin", `{"task_id":"4fe5"}`); code != 200 {
		t.Fatalf("stop: %d %s", code, b)
	}
}
