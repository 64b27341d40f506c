package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/cloud"
)

var compatRPCs = []string{
	"rpc_exec_create_task", "rpc_exec_start_server_task", "rpc_exec_stop_server_task", "rpc_exec_update_task",
	"rpc_exec_update_user_info", "rpc_exec_get_task_by_id", "rpc_exec_client_requesting_task", "rpc_exec_get_user_info",
}

// compatTexts are the error texts the original's pages match on; a 500 of
// the compatible endpoints carries one of them, never anything else.
var compatTexts = []string{"not registered", "UNIQUE constraint failed", "alredy exists", "not found", "does not exist.",
	"Could not retrieve info"}

// FuzzCompatBodies posts arbitrary bodies to the original's endpoints of
// a running gateway: every answer is JSON with a status the original's
// pages know, a bad body is a 400 that says why, no call fails as an
// internal error, and no answer carries a password sent in a body.
func FuzzCompatBodies(f *testing.F) {
	for _, s := range []string{
		`{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"s3cret-pass","files_paths":["client.py","task.py"],"selection_criteria":"\"camera\" in sensors","tags":["mnist","MLP","test"]}`,
		`{"task_id":"4fe5","host":"localhost","port":"error","username":"u","password":"p","files_paths":[]}`,
		`{"task_id":"x","host":"h","port":1,"username":"u","password":"p","files_paths":["../../etc/passwd"],"selection_criteria":"map(1..99999999, #)"}`,
		`{"task_id":"4fe5","port":8081}`, `{"task_id":"4fe5","tags":["x"]}`, `{"task_id":"4fe5"}`,
		`{"user_id":"guilhermeeec","data_qnt":0,"sensors":["camera","ecu"]}`, `{"user_id":"guilhermeeec"}`,
		`{"user_id":"guilhermeeec","data_qnt":1e999}`, `{"user_id":"a\u0000b"}`, `{"task_id":[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]}`,
		``, `null`, `[]`, `"x"`, `{}`, "\xff", `{"task_id":"4fe5"} trailing`,
	} {
		for i := range compatRPCs {
			f.Add(uint8(i), []byte(s))
		}
	}
	c, err := cloud.Open(context.Background(), cloud.Config{DataDir: filepath.Join(f.TempDir(), "data"), Listen: "127.0.0.1:0",
		Gateway: "127.0.0.1:0", Name: "gw"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(c.Close)
	client := &http.Client{Timeout: 20 * time.Second}
	known := map[int]bool{200: true, 400: true, 404: true, 409: true, 429: true, 500: true}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		fn := compatRPCs[int(which)%len(compatRPCs)]
		req, err := http.NewRequest("POST", c.GatewayURL()+"/"+fn, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+c.AdminToken)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %q: %v", fn, body, err)
		}
		out, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !known[res.StatusCode] || !json.Valid(out) {
			t.Fatalf("%s %q: %d %q", fn, body, res.StatusCode, out)
		}
		text := string(out)
		switch res.StatusCode {
		case 400:
			if !strings.Contains(text, "invalid arguments") && !strings.Contains(text, "Invalid or missing JSON body") {
				t.Fatalf("%s %q: a 400 that does not say what is wrong: %s", fn, body, out)
			}
		case 500:
			if !containsAny(text, compatTexts) {
				t.Fatalf("%s %q: 500 %s", fn, body, out)
			}
		}
		var sent struct {
			Password string `json:"password"`
		}
		if json.Unmarshal(body, &sent) == nil && len(sent.Password) >= 6 && strings.Contains(text, sent.Password) &&
			!strings.Contains(strings.Replace(string(body), sent.Password, "", 1), sent.Password) {
			t.Fatalf("%s %q: the answer carries the password: %s", fn, body, out)
		}
	})
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
