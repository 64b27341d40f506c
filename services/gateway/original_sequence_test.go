package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/gateway"
)

// bugServer runs until stopped, or fails at once when given test-error,
// as the original's task 4fe5 does.
const bugServer = `import json, sys, time
print(json.dumps({'type': 'info', 'info': 'Started'}), flush=True)
if 'test-error' in sys.argv:
    print(json.dumps({'type': 'error', 'exception': 'test-error'}), flush=True)
    sys.exit(1)
time.sleep(600)
`

// TestTheOriginalsOwnTestSequence replays the original's own test of its
// cloud logic (test_cloud_ml_logic.py: 14 steps, with its payloads and
// expected replies) through the original's HTTP endpoints, in legacy mode
// without a token and in token mode. Where flmngr answers differently on
// purpose, the step says so and checks flmngr's answer.
func TestTheOriginalsOwnTestSequence(t *testing.T) {
	open, _ := gateway.ParseNetworks("127.0.0.0/8,::1")
	for _, mode := range []struct {
		name string
		cfg  cloud.Config
		auth string
	}{
		{"legacy", cloud.Config{LegacyOpen: open, HashPassword: fastHash}, "none"},
		{"token", cloud.Config{HashPassword: fastHash}, "admin"},
	} {
		t.Run(mode.name, func(t *testing.T) {
			e := deployWith(t, mode.cfg)
			rpc := func(fn, body string) (int, string) {
				t.Helper()
				code, b := e.json("POST", "/"+fn, mode.auth, body)
				return code, strings.TrimSpace(string(b))
			}
			expect := func(step, fn, body string, wantCode int, want string) {
				t.Helper()
				if code, got := rpc(fn, body); code != wantCode || got != want {
					t.Fatalf("step %s: %s %s: got %d %s, want %d %s", step, fn, body, code, got, wantCode, want)
				}
			}
			// eventually200 repeats a call the original made after a sleep
			// (a run stopping or failing takes a moment).
			eventually200 := func(step, fn, body string) {
				t.Helper()
				eventually(t, 20*time.Second, "step "+step+": "+fn+" to answer 200", func() bool {
					code, _ := rpc(fn, body)
					return code == 200
				})
			}
			expect("1", "rpc_exec_start_server_task", `{"task_id":"4fe5"}`, 500, `"Task with ID=4fe5 not registered"`)
			expect("2", "rpc_exec_stop_server_task", `{"task_id":"4fe5"}`, 500, `"Task with ID=4fe5 not registered"`)
			expect("3", "rpc_exec_create_task", `{"task_id":"4fe5","host":"localhost","port":8080,"selection_criteria":"(data_qnt > 50) and (\"camera\" in sensors)","username":"user","password":"123","files_paths":["./task_4fe5/client.py","./task_4fe5/task.py"]}`, 200, "null")
			expect("3", "rpc_exec_create_task", `{"task_id":"aaaa","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["./task_4fe5/client.py"]}`, 200, "null")
			// "./" names are kept clean.
			if code, got := rpc("rpc_exec_get_task_by_id", `{"task_id":"4fe5"}`); code != 200 || !strings.Contains(got, `"files_paths":["task_4fe5/client.py","task_4fe5/task.py"]`) {
				t.Fatalf("task 4fe5: %d %s", code, got)
			}
			expect("4", "rpc_exec_create_task", `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["./task_4fe5/client.py"]}`, 500, `"UNIQUE constraint failed: tasks.ID"`)
			expect("5", "rpc_exec_create_task", `{"task_id":"bbbb","host":"localhost","port":"error","username":"user","password":"123","files_paths":["./task_4fe5/client.py"]}`,
				400, `"rpc_exec_create_task cannot be executed due to invalid arguments: 'error' is not of type 'integer'\n\nFailed validating 'type' in schema['properties']['port']:\n    {'type': 'integer'}\n\nOn instance['port']:\n    'error'"`)
			// Difference: the original names its own absolute directory.
			expect("6", "rpc_exec_start_server_task", `{"task_id":"aaaa"}`, 500, `"Directory 'tasks/task_aaaa' does not exist."`)

			// The original had task 4fe5's files on its disk; here they are uploaded.
			body, ct := multipartBody(t, map[string]string{"task_id": "4fe5"}, map[string]string{"server.py": bugServer})
			if code, _, b := e.do("POST", "/upload_files", mode.auth, body, ct); code != 200 {
				t.Fatalf("upload: %d %s", code, b)
			}
			expect("7", "rpc_exec_start_server_task", `{"task_id":"4fe5"}`, 200, "null")
			expect("8", "rpc_exec_stop_server_task", `{"task_id":"4fe5"}`, 200, "null")
			eventually200("9", "rpc_exec_start_server_task", `{"task_id":"4fe5","arguments":"test-error"}`)
			eventually(t, 20*time.Second, "step 10: the bugged run to end", func() bool {
				code, got := rpc("rpc_exec_stop_server_task", `{"task_id":"4fe5"}`)
				return code == 500 && got == `"Task with ID=4fe5 not found"`
			})
			eventually200("11", "rpc_exec_start_server_task", `{"task_id":"4fe5"}`)
			expect("11", "rpc_exec_stop_server_task", `{"task_id":"4fe5"}`, 200, "null")

			// The original answered user "xxxx" with a built-in fake client;
			// flmngr knows only registered clients, so it is registered
			// with the fake's attributes.
			expect("12", "rpc_exec_update_user_info", `{"user_id":"xxxx","data_qnt":323,"avg_acc_contrib":0.12,"avg_disconnection_per_round":0.44,"sensors":["camera","ecu"]}`, 200, "null")
			eventually200("12", "rpc_exec_start_server_task", `{"task_id":"4fe5"}`)
			var offers []map[string]any
			eventually(t, 20*time.Second, "step 12: an offer for xxxx", func() bool {
				code, got := rpc("rpc_exec_client_requesting_task", `{"user_id":"xxxx"}`)
				offers = nil
				return code == 200 && json.Unmarshal([]byte(got), &offers) == nil && len(offers) == 1
			})
			o := offers[0]
			pw, _ := o["password"].(string)
			// Differences: the password is a capability for xxxx, not "123";
			// the names are clean.
			if o["ID"] != "4fe5" || o["host"] != "localhost" || o["port"] != 8080.0 || o["client_arguments"] != nil || o["username"] != "user" ||
				!strings.HasPrefix(pw, "xxxx.") || len(o) != 8 {
				t.Fatalf("step 12: offer %v", o)
			}
			if tags, _ := json.Marshal(o["tags"]); string(tags) != "[]" {
				t.Fatalf("step 12: tags %s", tags)
			}
			if files, _ := json.Marshal(o["files_paths"]); string(files) != `["task_4fe5/client.py","task_4fe5/task.py"]` {
				t.Fatalf("step 12: files %s", files)
			}
			if code, _ := e.basicGet("/download/4fe5/server.py", "user", pw); code != http.StatusOK {
				t.Fatalf("step 12: download with the offer's password: %d", code)
			}
			expect("12", "rpc_exec_stop_server_task", `{"task_id":"4fe5"}`, 200, "null")
			// Difference: an invalid criterion is refused, never stored.
			expect("13", "rpc_exec_update_task", `{"task_id":"4fe5", "selection_criteria":"aaaaa"}`, 400,
				`"rpc_exec_update_task cannot be executed due to invalid arguments: invalid selection criterion: unknown name aaaaa (1:1)"`)
			eventually(t, 20*time.Second, "step 14: no offer once stopped", func() bool {
				code, got := rpc("rpc_exec_client_requesting_task", `{"user_id":"xxxx"}`)
				return code == 200 && got == "[]"
			})
		})
	}
}

// TestOriginalNamesAreCleanedNotTrusted: a leading "./" is taken away,
// and what escapes the task directory is still refused.
func TestOriginalNamesAreCleanedNotTrusted(t *testing.T) {
	e := deploy(t, false)
	for _, c := range []struct {
		files, want string
		code        int
	}{
		{`["./client.py","././task.py","./a/./b.py"]`, `["client.py","task.py","a/b.py"]`, 200},
		{`["./../x.py"]`, "escapes the task directory", 400},
		{`["./a/../../x.py"]`, "escapes the task directory", 400},
		{`["./"]`, "names the task directory itself", 400},
		{`["/etc/passwd"]`, "must be relative", 400},
		{`["a/./b.py"]`, "is not clean", 400},
		{`["./client.py","client.py"]`, "listed twice", 400},
	} {
		id := "n" + strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(c.files, `"`, ""), "/", ""), ".", "")
		id = strings.Trim(strings.NewReplacer("[", "", "]", "", ",", "").Replace(id), "_")
		code, b := e.json("POST", "/rpc_exec_create_task", "admin", `{"task_id":"`+id+`","host":"h","port":1,"username":"u","password":"p","files_paths":`+c.files+`}`)
		if code != c.code || (code != 200 && !strings.Contains(string(b), c.want)) {
			t.Fatalf("%s: %d %s, want %d %s", c.files, code, b, c.code, c.want)
		}
		if code == 200 {
			if code, b := e.json("POST", "/rpc_exec_get_task_by_id", "admin", `{"task_id":"`+id+`"}`); code != 200 || !strings.Contains(string(b), `"files_paths":`+c.want) {
				t.Fatalf("%s: kept as %s", c.files, b)
			}
		}
	}
}
