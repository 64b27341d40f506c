package commands

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// fold builds a state from payloads as if they had been appended in order.
func foldTask(ps ...events.Payload) TaskState {
	var s TaskState
	for i, p := range ps {
		s.Apply(events.Envelope{Seq: uint64(i + 1), Time: time.Unix(int64(i), 0), Event: p})
	}
	return s
}

func foldClient(ps ...events.Payload) ClientState {
	var s ClientState
	for i, p := range ps {
		s.Apply(events.Envelope{Seq: uint64(i + 1), Time: time.Unix(int64(i), 0), Event: p})
	}
	return s
}

// foldAgent folds events client id's own agent caused.
func foldAgent(id string, ps ...events.Payload) ClientState {
	var s ClientState
	for i, p := range ps {
		s.Apply(events.Envelope{Seq: uint64(i + 1), Time: time.Unix(int64(i), 0), Source: AgentSource(id), Aggregate: events.Client(id), Event: p})
	}
	return s
}

func ptr[T any](v T) *T { return &v }

var spec4fe5 = events.TaskSpec{
	Host: "localhost", Port: 8080, Username: "user", PasswordHash: "h",
	SelectionCriteria: `"camera" in sensors`, FilesPaths: []string{"client.py", "task.py"},
	Tags: []string{"mnist", "MLP", "test"},
}

func valid4fe5() CreateTask {
	return CreateTask{
		TaskID: "4fe5", Host: "localhost", Port: 8080, Username: "user", Password: "123", passwordHash: "h",
		FilesPaths: []string{"client.py", "task.py"}, SelectionCriteria: `"camera" in sensors`,
		Tags: []string{"mnist", "MLP", "test"},
	}
}

type decideCase struct {
	name  string
	state TaskState
	cmd   interface {
		decide(TaskState) ([]events.Payload, error)
	}
	want      []events.Payload
	wantKind  fault.Kind
	wantField string
	wantText  string
}

func runTaskCases(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.decide(tc.state)
			if tc.wantKind != "" {
				var e *fault.Error
				if !errors.As(err, &e) {
					t.Fatalf("got %v (%v), want a %s error", got, err, tc.wantKind)
				}
				if e.Kind != tc.wantKind || e.Field != tc.wantField || !strings.Contains(e.Message, tc.wantText) {
					t.Fatalf("got %s/%s %q, want %s/%s containing %q", e.Kind, e.Field, e.Message, tc.wantKind, tc.wantField, tc.wantText)
				}
				if got != nil {
					t.Fatalf("an error came with events: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestCreateTask(t *testing.T) {
	with := func(f func(*CreateTask)) CreateTask { c := valid4fe5(); f(&c); return c }
	created := foldTask(&events.TaskCreated{TaskSpec: spec4fe5})
	runTaskCases(t, []decideCase{
		{name: "valid", cmd: valid4fe5(), want: []events.Payload{&events.TaskCreated{TaskSpec: spec4fe5}}},
		{name: "tags_trimmed_and_empty_dropped", cmd: with(func(c *CreateTask) { c.Tags = []string{" a ", "", "a", "b"} }),
			want: []events.Payload{&events.TaskCreated{TaskSpec: func() events.TaskSpec { s := spec4fe5; s.Tags = []string{"a", "b"}; return s }()}}},
		{name: "duplicate", state: created, cmd: valid4fe5(), wantKind: fault.KindConflict, wantText: "already exists"},
		{name: "recreate_after_delete", state: foldTask(&events.TaskCreated{TaskSpec: spec4fe5}, &events.TaskDeleted{}), cmd: valid4fe5(),
			want: []events.Payload{&events.TaskCreated{TaskSpec: spec4fe5}}},
		{name: "missing_id", cmd: with(func(c *CreateTask) { c.TaskID = "" }), wantKind: fault.KindInvalid, wantField: "task_id", wantText: "required"},
		{name: "bad_id", cmd: with(func(c *CreateTask) { c.TaskID = "../x" }), wantKind: fault.KindInvalid, wantField: "task_id"},
		{name: "long_id", cmd: with(func(c *CreateTask) { c.TaskID = strings.Repeat("a", 65) }), wantKind: fault.KindInvalid, wantField: "task_id"},
		{name: "empty_host", cmd: with(func(c *CreateTask) { c.Host = " " }), wantKind: fault.KindInvalid, wantField: "host"},
		{name: "port_zero", cmd: with(func(c *CreateTask) { c.Port = 0 }), wantKind: fault.KindInvalid, wantField: "port", wantText: "between 1 and 65535"},
		{name: "port_too_big", cmd: with(func(c *CreateTask) { c.Port = 65536 }), wantKind: fault.KindInvalid, wantField: "port"},
		{name: "absolute_file", cmd: with(func(c *CreateTask) { c.FilesPaths = []string{"/etc/passwd"} }), wantKind: fault.KindInvalid, wantField: "files_paths", wantText: "relative"},
		{name: "dotdot_file", cmd: with(func(c *CreateTask) { c.FilesPaths = []string{"../x.py"} }), wantKind: fault.KindInvalid, wantField: "files_paths", wantText: "escapes"},
		{name: "unclean_file", cmd: with(func(c *CreateTask) { c.FilesPaths = []string{"a/./b.py"} }), wantKind: fault.KindInvalid, wantField: "files_paths", wantText: "not clean"},
		{name: "duplicate_file", cmd: with(func(c *CreateTask) { c.FilesPaths = []string{"a.py", "a.py"} }), wantKind: fault.KindInvalid, wantField: "files_paths", wantText: "twice"},
		{name: "bad_criterion", cmd: with(func(c *CreateTask) { c.SelectionCriteria = "aaaaa" }), wantKind: fault.KindInvalid, wantField: "selection_criteria", wantText: "unknown name aaaaa"},
		{name: "non_bool_criterion", cmd: with(func(c *CreateTask) { c.SelectionCriteria = "data_qnt" }), wantKind: fault.KindInvalid, wantField: "selection_criteria", wantText: "bool"},
		{name: "syntax_criterion", cmd: with(func(c *CreateTask) { c.SelectionCriteria = "data_qnt >" }), wantKind: fault.KindInvalid, wantField: "selection_criteria"},
		{name: "password_without_username", cmd: with(func(c *CreateTask) { c.Username = "" }), wantKind: fault.KindInvalid, wantField: "username"},
		{name: "unhashed_password", cmd: with(func(c *CreateTask) { c.passwordHash = "" }), wantKind: fault.KindInternal},
		{name: "empty_server_command", cmd: with(func(c *CreateTask) { c.ServerCommand = []string{""} }), wantKind: fault.KindInvalid, wantField: "server_command"},
	})
}

func TestUpdateTask(t *testing.T) {
	created := foldTask(&events.TaskCreated{TaskSpec: spec4fe5})
	moved := spec4fe5
	moved.Port = 8081
	moved.SelectionCriteria = "data_qnt > 50"
	runTaskCases(t, []decideCase{
		{name: "unknown", cmd: UpdateTask{TaskID: "zzzz", Port: ptr(1)}, wantKind: fault.KindNotFound, wantText: "task zzzz not found"},
		{name: "change", state: created, cmd: UpdateTask{TaskID: "4fe5", Port: ptr(8081), SelectionCriteria: ptr("data_qnt > 50")},
			want: []events.Payload{&events.TaskUpdated{TaskSpec: moved, Changed: []string{"port", "selection_criteria"}}}},
		{name: "same_values_change_nothing", state: created, cmd: UpdateTask{TaskID: "4fe5", Port: ptr(8080), Host: ptr("localhost")}},
		{name: "empty_update_changes_nothing", state: created, cmd: UpdateTask{TaskID: "4fe5"}},
		{name: "bad_criterion_never_stored", state: created, cmd: UpdateTask{TaskID: "4fe5", SelectionCriteria: ptr("sensors +")}, wantKind: fault.KindInvalid, wantField: "selection_criteria"},
		{name: "bad_port", state: created, cmd: UpdateTask{TaskID: "4fe5", Port: ptr(-1)}, wantKind: fault.KindInvalid, wantField: "port"},
		{name: "deleted", state: foldTask(&events.TaskCreated{TaskSpec: spec4fe5}, &events.TaskDeleted{}), cmd: UpdateTask{TaskID: "4fe5", Port: ptr(1)}, wantKind: fault.KindNotFound},
	})
}

func TestDeleteTask(t *testing.T) {
	created := &events.TaskCreated{TaskSpec: spec4fe5}
	runTaskCases(t, []decideCase{
		{name: "unknown", cmd: DeleteTask{TaskID: "zzzz"}, wantKind: fault.KindNotFound},
		{name: "idle", state: foldTask(created), cmd: DeleteTask{TaskID: "4fe5"}, want: []events.Payload{&events.TaskDeleted{}}},
		{name: "running", state: foldTask(created, &events.TaskStartRequested{Run: "1"}), cmd: DeleteTask{TaskID: "4fe5"}, wantKind: fault.KindConflict, wantText: "stop it"},
		{name: "finished", state: foldTask(created, &events.TaskStartRequested{Run: "1"}, &events.TaskFinished{Run: "1"}), cmd: DeleteTask{TaskID: "4fe5"}, want: []events.Payload{&events.TaskDeleted{}}},
		{name: "twice", state: foldTask(created, &events.TaskDeleted{}), cmd: DeleteTask{TaskID: "4fe5"}, wantKind: fault.KindNotFound},
	})
}

var serverPy = &events.TaskFilesUploaded{Files: []events.FileRef{{Name: "server.py", Size: 10, SHA256: strings.Repeat("ab", 32)}}}

func TestStartAndStop(t *testing.T) {
	created := &events.TaskCreated{TaskSpec: spec4fe5}
	started := foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"})
	args := "--rounds 3"
	runTaskCases(t, []decideCase{
		{name: "start_unknown", cmd: StartTask{TaskID: "zzzz"}, wantKind: fault.KindNotFound, wantText: "task zzzz not found"},
		{name: "start_idle", state: foldTask(created, serverPy), cmd: StartTask{TaskID: "4fe5"}, want: []events.Payload{&events.TaskStartRequested{Run: "1"}}},
		{name: "start_with_arguments", state: foldTask(created, serverPy), cmd: StartTask{TaskID: "4fe5", Arguments: &args}, want: []events.Payload{&events.TaskStartRequested{Run: "1", Arguments: &args}}},
		{name: "start_started", state: started, cmd: StartTask{TaskID: "4fe5"}, wantKind: fault.KindConflict, wantText: "already running"},
		{name: "start_running", state: foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"}, &events.TaskServerStarted{Run: "1"}), cmd: StartTask{TaskID: "4fe5"}, wantKind: fault.KindConflict},
		{name: "start_stopping", state: foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"}, &events.TaskStopRequested{Run: "1"}), cmd: StartTask{TaskID: "4fe5"}, wantKind: fault.KindConflict, wantText: "stopping"},
		{name: "restart_finished", state: foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"}, &events.TaskFinished{Run: "1"}), cmd: StartTask{TaskID: "4fe5"}, want: []events.Payload{&events.TaskStartRequested{Run: "2"}}},
		{name: "restart_errored", state: foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"}, &events.TaskErrored{Run: "1"}), cmd: StartTask{TaskID: "4fe5"}, want: []events.Payload{&events.TaskStartRequested{Run: "2"}}},
		{name: "run_numbers_survive_delete", state: foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"}, &events.TaskStopped{Run: "1"}, &events.TaskDeleted{}, created, serverPy), cmd: StartTask{TaskID: "4fe5"}, want: []events.Payload{&events.TaskStartRequested{Run: "2"}}},
		{name: "start_without_server_py", state: foldTask(created), cmd: StartTask{TaskID: "4fe5"}, wantKind: fault.KindConflict, wantText: "has no server.py"},
		{name: "start_with_program_in_path", state: foldTask(&events.TaskCreated{TaskSpec: events.TaskSpec{Host: "h", Port: 1, ServerCommand: []string{"python3", "-m", "srv"}}}), cmd: StartTask{TaskID: "4fe5"}, want: []events.Payload{&events.TaskStartRequested{Run: "1"}}},
		{name: "start_with_missing_task_program", state: foldTask(&events.TaskCreated{TaskSpec: events.TaskSpec{Host: "h", Port: 1, ServerCommand: []string{"./server", "--x"}}}), cmd: StartTask{TaskID: "4fe5"}, wantKind: fault.KindConflict, wantText: "has no server"},
		{name: "stop_unknown", cmd: StopTask{TaskID: "zzzz"}, wantKind: fault.KindNotFound},
		{name: "stop_idle", state: foldTask(created, serverPy), cmd: StopTask{TaskID: "4fe5"}, wantKind: fault.KindConflict, wantText: "not running"},
		{name: "stop_started", state: started, cmd: StopTask{TaskID: "4fe5"}, want: []events.Payload{&events.TaskStopRequested{Run: "1"}}},
		{name: "stop_stopping", state: foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"}, &events.TaskStopRequested{Run: "1"}), cmd: StopTask{TaskID: "4fe5"}, wantKind: fault.KindConflict, wantText: "already stopping"},
		{name: "stop_finished", state: foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"}, &events.TaskFinished{Run: "1"}), cmd: StopTask{TaskID: "4fe5"}, wantKind: fault.KindConflict, wantText: "not running"},
	})
	// An event of an old run does not end the current one.
	s := foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"}, &events.TaskStopRequested{Run: "1"}, &events.TaskStopped{Run: "1"}, &events.TaskStartRequested{Run: "2"}, &events.TaskErrored{Run: "1"})
	if s.Status != StatusStartRequested || s.Run != "2" {
		t.Fatalf("stale run event changed the state: %+v", s)
	}
}

func TestClientCommands(t *testing.T) {
	sensors := []string{"camera", "ecu"}
	registered := foldClient(&events.ClientRegistered{Attributes: events.ClientAttributes{Sensors: sensors}})
	cases := []struct {
		name  string
		state ClientState
		cmd   interface {
			decide(ClientState) ([]events.Payload, error)
		}
		want      []events.Payload
		wantKind  fault.Kind
		wantField string
	}{
		{name: "register", cmd: RegisterClient{ClientID: "guilhermeeec", ClientInfo: ClientInfo{Sensors: &sensors, DataQnt: ptr(int64(0))}},
			want: []events.Payload{&events.ClientRegistered{Attributes: events.ClientAttributes{Sensors: sensors}}}},
		{name: "register_twice", state: registered, cmd: RegisterClient{ClientID: "guilhermeeec"}, wantKind: fault.KindConflict},
		{name: "register_bad_id", cmd: RegisterClient{ClientID: "a b"}, wantKind: fault.KindInvalid, wantField: "user_id"},
		{name: "register_negative_data", cmd: RegisterClient{ClientID: "c", ClientInfo: ClientInfo{DataQnt: ptr(int64(-1))}}, wantKind: fault.KindInvalid, wantField: "data_qnt"},
		{name: "register_bad_extra_key", cmd: RegisterClient{ClientID: "c", ClientInfo: ClientInfo{Extra: map[string]any{"a-b": 1.0}}}, wantKind: fault.KindInvalid, wantField: "extra"},
		{name: "register_bad_extra_value", cmd: RegisterClient{ClientID: "c", ClientInfo: ClientInfo{Extra: map[string]any{"a": []any{1}}}}, wantKind: fault.KindInvalid, wantField: "extra"},
		{name: "report_unknown", cmd: ReportClientInfo{ClientID: "nobody", ClientInfo: ClientInfo{DataQnt: ptr(int64(5))}}, wantKind: fault.KindNotFound},
		{name: "report_upsert_registers", cmd: ReportClientInfo{ClientID: "c", Register: true, ClientInfo: ClientInfo{DataQnt: ptr(int64(5))}},
			want: []events.Payload{&events.ClientRegistered{Attributes: events.ClientAttributes{Sensors: []string{}, DataQnt: 5}}}},
		{name: "report_same_changes_nothing", state: registered, cmd: ReportClientInfo{ClientID: "guilhermeeec", ClientInfo: ClientInfo{Sensors: &sensors}}},
		{name: "report_changes", state: registered, cmd: ReportClientInfo{ClientID: "guilhermeeec", ClientInfo: ClientInfo{
			Sensors: &[]string{"rpi"}, DataQnt: ptr(int64(5)), AvgAccContrib: ptr(0.1), AvgDisconnectionPerRound: ptr(0.2), Extra: map[string]any{"gpu": true}}},
			want: []events.Payload{&events.ClientInfoReported{
				Attributes: events.ClientAttributes{Sensors: []string{"rpi"}, DataQnt: 5, AvgAccContrib: ptr(0.1), AvgDisconnectionPerRound: ptr(0.2), Extra: map[string]any{"gpu": true}},
				Changed:    []string{"sensors", "data_qnt", "avg_acc_contrib", "avg_disconnection_per_round", "extra"}}}},
		{name: "report_removes_extra", state: foldClient(&events.ClientRegistered{Attributes: events.ClientAttributes{Sensors: sensors, Extra: map[string]any{"gpu": true}}}),
			cmd:  ReportClientInfo{ClientID: "c", ClientInfo: ClientInfo{Extra: map[string]any{"gpu": nil}}},
			want: []events.Payload{&events.ClientInfoReported{Attributes: events.ClientAttributes{Sensors: sensors}, Changed: []string{"extra"}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.decide(tc.state)
			if tc.wantKind != "" {
				var e *fault.Error
				if !errors.As(err, &e) || e.Kind != tc.wantKind || e.Field != tc.wantField {
					t.Fatalf("got %v, want %s error on %q", err, tc.wantKind, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("events:\n got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func TestCriterion(t *testing.T) {
	acc := 0.7
	alice := events.ClientAttributes{Sensors: []string{"camera", "ecu"}, DataQnt: 0}
	xxxx := events.ClientAttributes{Sensors: []string{"lidar"}, DataQnt: 323, AvgAccContrib: &acc, Extra: map[string]any{"region": "eu", "gpu": true}}
	cases := []struct {
		src          string
		alice, xxxx  bool
		aliceErr     bool
		compileError string
	}{
		{src: ``, alice: true, xxxx: true},
		{src: `"camera" in sensors`, alice: true},
		{src: `data_qnt > 50`, xxxx: true},
		{src: `avg_acc_contrib == nil`, alice: true},
		{src: `avg_acc_contrib > 0.5`, xxxx: true, aliceErr: true},
		{src: `attrs.region == "eu" && attrs.gpu`, xxxx: true},
		{src: `user_id startsWith "gui"`, alice: true},
		{src: `aaaaa`, compileError: "unknown name aaaaa"},
		{src: `1 +`, compileError: "unexpected token"},
		{src: `data_qnt`, compileError: "bool"},
		{src: strings.Repeat("data_qnt > 1 && ", 200) + "true", compileError: "nodes"},
		{src: strings.Repeat("x", MaxCriterionLength+1), compileError: "longer than"},
	}
	for _, tc := range cases {
		c, err := CompileCriterion(tc.src)
		if tc.compileError != "" {
			if err == nil || !strings.Contains(err.Error(), tc.compileError) || fault.KindOf(err) != fault.KindInvalid {
				t.Errorf("%q: compile error %v, want one containing %q", tc.src, err, tc.compileError)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.src, err)
			continue
		}
		got, err := c.Match("guilhermeeec", alice)
		if (err != nil) != tc.aliceErr || got != tc.alice {
			t.Errorf("%q on alice = %v, %v; want %v (error %v)", tc.src, got, err, tc.alice, tc.aliceErr)
		}
		if got, err := c.Match("xxxx", xxxx); err != nil || got != tc.xxxx {
			t.Errorf("%q on xxxx = %v, %v; want %v", tc.src, got, err, tc.xxxx)
		}
	}
}
