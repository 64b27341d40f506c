package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestOriginalEndpointsWithOriginalPayloads drives the original's
// endpoints with its example payloads (task 4fe5, user guilhermeeec) and
// checks its statuses, bodies and error texts.
func TestOriginalEndpointsWithOriginalPayloads(t *testing.T) {
	e := deploy(t, false)
	rpc := func(fn, body string) (int, string) {
		t.Helper()
		code, b := e.json("POST", "/"+fn, "admin", body)
		return code, strings.TrimSpace(string(b))
	}
	expect := func(fn, body string, wantCode int, want string) {
		t.Helper()
		code, got := rpc(fn, body)
		if code != wantCode || !strings.Contains(got, want) {
			t.Fatalf("%s %s: got %d %s, want %d containing %s", fn, body, code, got, wantCode, want)
		}
	}
	create := `{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["client.py","task.py"],"selection_criteria":"\"camera\" in sensors","tags":["mnist","MLP","test"]}`

	// Without the admin token a mutating call is refused.
	if code, _ := e.json("POST", "/rpc_exec_create_task", "none", create); code != http.StatusUnauthorized {
		t.Fatalf("create without a token: %d", code)
	}
	expect("rpc_exec_create_task", create, 200, "null")
	expect("rpc_exec_create_task", create, 500, `"UNIQUE constraint failed: tasks.ID"`)
	// The whole of Python's str(ValidationError), as the original sent it.
	expect("rpc_exec_create_task", `{"task_id":"x","host":"localhost","port":"error","username":"u","password":"p","files_paths":[]}`,
		400, `"rpc_exec_create_task cannot be executed due to invalid arguments: 'error' is not of type 'integer'\n\n`+
			`Failed validating 'type' in schema['properties']['port']:\n    {'type': 'integer'}\n\n`+
			`On instance['port']:\n    'error'"`)
	expect("rpc_exec_create_task", `{"task_id":"x","host":"localhost","port":1,"username":"u","password":"p","files_paths":[],"colour":"red"}`,
		400, `Additional properties are not allowed ('colour' was unexpected)`)
	// Python would print the body with its password; flmngr does not.
	code, got := rpc("rpc_exec_create_task", `{"task_id":"x","host":"h","port":1,"username":"u","password":"s3cret-pass","files_paths":[],"colour":"red"}`)
	if code != 400 || strings.Contains(got, "s3cret-pass") || !strings.Contains(got, `\n     'password': '***',\n`) {
		t.Fatalf("unknown property next to a password: %d %s", code, got)
	}
	expect("rpc_exec_create_task", `{"task_id":"x","port":1,"username":"u","password":"p","files_paths":[]}`, 400, `'host' is a required property`)
	expect("rpc_exec_create_task", `{"task_id":"x","host":"h","port":1,"username":"u","password":"p","files_paths":[],"selection_criteria":"aaaaa"}`,
		400, "invalid arguments: invalid selection criterion: unknown name aaaaa")

	code, got = rpc("rpc_exec_get_task_by_id", `{"task_id":"4fe5"}`)
	var task map[string]any
	if err := json.Unmarshal([]byte(got), &task); err != nil || code != 200 {
		t.Fatalf("get_task_by_id: %d %s", code, got)
	}
	for _, k := range []string{"ID", "host", "port", "running", "selection_criteria", "server_arguments", "client_arguments", "username", "tags", "files_paths", "creation_date", "last_mod_date"} {
		if _, ok := task[k]; !ok {
			t.Errorf("task record lacks %s", k)
		}
	}
	if _, ok := task["password"]; ok || strings.Contains(got, "password") {
		t.Fatalf("the task record carries the password: %s", got)
	}
	if len(task) != 12 || task["running"] != false || task["server_arguments"] != "" || task["client_arguments"] != nil || task["creation_date"] != task["last_mod_date"] {
		t.Fatalf("task record %v", task)
	}
	if tags, _ := json.Marshal(task["tags"]); string(tags) != `["mnist","MLP","test"]` {
		t.Fatalf("tags %s", tags)
	}
	expect("rpc_exec_get_task_by_id", `{"task_id":"zzzz"}`, 500, `"Task with ID=zzzz not registered"`)
	expect("rpc_exec_start_server_task", `{"task_id":"zzzz"}`, 500, `"Task with ID=zzzz not registered"`)
	expect("rpc_exec_start_server_task", `{"task_id":"4fe5"}`, 500, `"Directory 'tasks/task_4fe5' does not exist."`)
	expect("rpc_exec_stop_server_task", `{"task_id":"4fe5"}`, 500, `"Task with ID=4fe5 not found"`)
	expect("rpc_exec_stop_server_task", `{"task_id":"zzzz"}`, 500, `"Task with ID=zzzz not registered"`)
	expect("rpc_exec_update_task", `{"host":"other"}`, 200, "null") // no task_id: nothing, as the original
	expect("rpc_exec_update_task", `{"task_id":"4fe5","port":8081}`, 200, "null")
	expect("rpc_exec_update_task", `{"task_id":"4fe5","tags":["x"]}`, 400, `('tags' was unexpected)`)

	expect("rpc_exec_update_user_info", `{"user_id":"guilhermeeec","data_qnt":0,"sensors":["camera","ecu"]}`, 200, "null")
	code, got = rpc("rpc_exec_get_user_info", `{"user_id":"guilhermeeec"}`)
	var user map[string]any
	if err := json.Unmarshal([]byte(got), &user); err != nil || code != 200 || user["ID"] != "guilhermeeec" || user["data_qnt"] != 0.0 ||
		user["avg_acc_contrib"] != nil || user["avg_disconnection_per_round"] != nil || len(user) != 7 {
		t.Fatalf("get_user_info: %d %s", code, got)
	}
	expect("rpc_exec_update_user_info", `{"user_id":"guilhermeeec","data_qnt":5,"avg_acc_contrib":0.1,"avg_disconnection_per_round":0.2,"sensors":["rpi"]}`, 200, "null")
	expect("rpc_exec_get_user_info", `{"user_id":"guilhermeeec"}`, 200, `"sensors":["rpi"]`)
	expect("rpc_exec_get_user_info", `{"user_id":"nobody"}`, 500, `"User with ID=nobody not registered"`)
	expect("rpc_exec_client_requesting_task", `{"user_id":"nobody"}`, 500, `"Could not retrieve info from user with ID=nobody"`)
	expect("rpc_exec_client_requesting_task", `{"user_id":"guilhermeeec"}`, 200, `[]`)
	expect("rpc_exec_update_user_info", `{"user_id":"u","data_qnt":"many"}`, 400, `'many' is not of type 'integer'`)

	expect("rpc_exec_get_task_by_id", `null`, 400, `{"error":"Invalid or missing JSON body"}`)
	expect("rpc_exec_launch_rockets", `{}`, 404, `unknown function`)
	code, h, b := e.do("OPTIONS", "/rpc_exec_create_task", "none", nil, "")
	// Token mode: no origin is allowed by default (see TestTokenModeCORS).
	if code != 200 || h.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") || !strings.Contains(string(b), "CORS preflight response") {
		t.Fatalf("preflight: %d %v %s", code, h, b)
	}

	// Files: upload through the original's form, download with Basic auth.
	body, ct := multipartBody(t, map[string]string{"task_id": "4fe5"}, map[string]string{"client.py": "print('client')\n", "task.py": "# task\n"})
	code, _, b = e.do("POST", "/upload_files", "admin", body, ct)
	if code != 200 || !strings.Contains(string(b), `"message":"Files uploaded successfully"`) || !strings.Contains(string(b), `"client.py"`) {
		t.Fatalf("upload: %d %s", code, b)
	}
	body, ct = multipartBody(t, nil, map[string]string{"client.py": "x"})
	if code, _, b = e.do("POST", "/upload_files", "admin", body, ct); code != 400 || !strings.Contains(string(b), "Task ID is required") {
		t.Fatalf("upload without task_id: %d %s", code, b)
	}
	body, ct = multipartBody(t, map[string]string{"task_id": "4fe5"}, nil)
	if code, _, b = e.do("POST", "/upload_files", "admin", body, ct); code != 400 || !strings.Contains(string(b), "No files uploaded") {
		t.Fatalf("upload without files: %d %s", code, b)
	}
	body, ct = multipartBody(t, map[string]string{"task_id": "4fe5"}, map[string]string{"../../etc/x": "x"})
	if code, _, b = e.do("POST", "/upload_files", "admin", body, ct); code != 400 {
		t.Fatalf("upload of ../../etc/x: %d %s", code, b)
	}
	body, ct = multipartBody(t, map[string]string{"task_id": "../x"}, map[string]string{"a.py": "x"})
	if code, _, b = e.do("POST", "/upload_files", "admin", body, ct); code != 400 {
		t.Fatalf("upload for task ../x: %d %s", code, b)
	}

	download := func(path, user, pass string) (int, http.Header, string) {
		req, _ := http.NewRequest("GET", e.base+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	if code, _, got := download("/download/4fe5/client.py", "user", "123"); code != 200 || got != "print('client')\n" {
		t.Fatalf("download: %d %q", code, got)
	}
	for _, c := range [][2]string{{"user", "wrong"}, {"", ""}, {"other", "123"}} {
		code, h, got := download("/download/4fe5/client.py", c[0], c[1])
		if code != 401 || h.Get("WWW-Authenticate") != `Basic realm="Login Required"` || !strings.Contains(got, "Unauthorized access. Please provide valid credentials.") {
			t.Fatalf("download as %v: %d %v %s", c, code, h, got)
		}
	}
	// An unknown task is answered as a wrong password is: nothing tells
	// which tasks exist.
	if code, _, got := download("/download/zzzz/client.py", "user", "123"); code != 401 || !strings.Contains(got, "Unauthorized access") {
		t.Fatalf("download of an unknown task: %d %s", code, got)
	}
	if code, _, _ := download("/download/4fe5/missing.py", "user", "123"); code != 404 {
		t.Fatalf("download of a missing file: %d", code)
	}
}
