package commands

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// wireCommands are the commands that arrive as JSON from outside (the
// NATS endpoints, the gateway), each with the decoder the endpoints use.
var wireCommands = []func() Command{
	func() Command { return &CreateTask{} },
	func() Command { return &UpdateTask{} },
	func() Command { return &DeleteTask{} },
	func() Command { return &StartTask{} },
	func() Command { return &StopTask{} },
	func() Command { return &RecordTaskFiles{} },
	func() Command { return &RegisterClient{} },
	func() Command { return &ReportClientInfo{} },
	func() Command { return &ReportClientTask{} },
	func() Command { return &IssueClientKey{} },
	func() Command { return &RevokeClientKey{} },
}

// fuzzStates are the states each decoded command is decided against.
func fuzzStates() (tasks []TaskState, clients []ClientState) {
	sha := strings.Repeat("0f", 32)
	created := &events.TaskCreated{TaskSpec: spec4fe5}
	files := &events.TaskFilesUploaded{Files: []events.FileRef{{Name: "server.py", Size: 3, SHA256: sha}}}
	tasks = []TaskState{
		{},
		foldTask(created),
		foldTask(created, files),
		foldTask(created, files, &events.TaskStartRequested{Run: "1"}),
		foldTask(created, files, &events.TaskStartRequested{Run: "1"}, &events.TaskServerStarted{Run: "1", PID: 5}),
		foldTask(created, files, &events.TaskStartRequested{Run: "1"}, &events.TaskStopRequested{Run: "1"}),
		foldTask(created, &events.TaskDeleted{}),
	}
	reg := &events.ClientRegistered{Attributes: events.ClientAttributes{Sensors: []string{"camera"}}}
	clients = []ClientState{
		{},
		foldClient(reg),
		foldClient(reg, &events.ClientTaskStarted{TaskID: "E", Run: "1", PID: 7},
			&events.ClientTaskQuarantined{TaskID: "F", Run: "1", SpecSeq: 3}, &events.ClientKeyIssued{PublicKey: "U" + strings.Repeat("A", 55)}),
	}
	return tasks, clients
}

// FuzzDecideWireCommands decodes arbitrary JSON as each command that comes
// from outside, exactly as the endpoints do (unknown fields refused), and
// decides it against tasks and clients in every state: nothing panics,
// every refusal is an *fault.Error with a kind and a message, no decision
// carries a clear password, and every event decided encodes, decodes and
// folds into the state.
func FuzzDecideWireCommands(f *testing.F) {
	for _, s := range []string{
		`{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123456789","files_paths":["client.py","task.py"],"selection_criteria":"\"camera\" in sensors","server_arguments":"","tags":["mnist","MLP","test"]}`,
		`{"task_id":"4fe5","selection_criteria":"len(sensors) > 1 && data_qnt > 3","tags":[""]}`,
		`{"task_id":"4fe5","selection_criteria":"1/0"}`,
		`{"task_id":"4fe5","selection_criteria":"map(1..99999999, #)"}`,
		`{"task_id":"4fe5","files_paths":["../x","/etc/passwd","a\u0000b"]}`,
		`{"task_id":"4fe5","files":[{"name":"server.py","size":3,"sha256":"` + strings.Repeat("ab", 32) + `"}]}`,
		`{"task_id":"4fe5","arguments":"--rounds 3"}`,
		`{"task_id":"4fe5","port":99999}`,
		`{"task_id":"4fe5","server_command":["python3","server.py","{workdir}"]}`,
		`{"user_id":"guilhermeeec","sensors":["camera","ecu"],"data_qnt":20,"avg_acc_contrib":0.5,"avg_disconnection_per_round":0.1}`,
		`{"user_id":"guilhermeeec","extra":{"gpu":true,"site":{"a":[1,2,{"b":null}]}}}`,
		`{"user_id":"c","kind":"quarantined","task_id":"E","run":"1","spec_seq":3,"reason":"errored"}`,
		`{"user_id":"c","kind":"exploded","task_id":"E","run":"1"}`,
		`{"user_id":"c","public_key":"UABC"}`,
		`{"task_id":"` + strings.Repeat("a", 70) + `"}`,
		`{"user_id":"c","avg_acc_contrib":1e999}`,
		`{"unknown":1}`, `[]`, `null`, `{}`, `"x"`, "\xff",
	} {
		for i := range wireCommands {
			f.Add(uint8(i), []byte(s))
		}
	}
	hash := func(clear string) (string, error) {
		b, err := bcrypt.GenerateFromPassword([]byte(clear), bcrypt.MinCost)
		return string(b), err
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		cmd := wireCommands[int(which)%len(wireCommands)]()
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(cmd) != nil {
			return // the endpoints answer invalid before deciding
		}
		// The handler hashes secrets before deciding; so does this, with a
		// canary for the clear password that no event may carry.
		const canary = "clear-password-canary-7f3a"
		hashed := false
		if s, ok := cmd.(withSecrets); ok {
			for _, sec := range s.secrets() {
				if *sec.clear == "" || len(*sec.clear) > maxPassword {
					continue
				}
				*sec.clear = canary
				h, err := hash(canary)
				if err != nil {
					t.Fatal(err)
				}
				*sec.hash, hashed = h, true
			}
		}
		check := func(payloads []events.Payload, err error) []events.Envelope {
			if err != nil {
				var e *fault.Error
				if !errors.As(err, &e) || e.Kind == "" || e.Message == "" {
					t.Fatalf("%T %s: refusal %v is not an *fault.Error with a kind and a message", cmd, body, err)
				}
				if e.Kind == fault.KindInternal {
					t.Fatalf("%T %s: internal error %v", cmd, body, err)
				}
				if payloads != nil {
					t.Fatalf("%T %s: a refusal came with events %v", cmd, body, payloads)
				}
				return nil
			}
			envs := make([]events.Envelope, len(payloads))
			for i, p := range payloads {
				env, err := events.New("e", "fuzz", cmd.Aggregate(), time.Unix(1, 0), p)
				if err != nil {
					t.Fatalf("%T %s: decided %T that does not make an event: %v", cmd, body, p, err)
				}
				wire, err := events.Encode(env)
				if err != nil {
					t.Fatalf("%T %s: decided %T that does not encode: %v", cmd, body, p, err)
				}
				if hashed && bytes.Contains(wire, []byte(canary)) && !inOtherFields(cmd, canary) {
					t.Fatalf("%T %s: event carries the clear password: %s", cmd, body, wire)
				}
				if envs[i], err = events.Decode(wire, uint64(100+i)); err != nil {
					t.Fatalf("%T %s: decided event does not decode: %v\n%s", cmd, body, err, wire)
				}
			}
			return envs
		}
		tasks, clients := fuzzStates() // fresh: folding into them changes them
		switch c := cmd.(type) {
		case taskCommand:
			for _, s := range tasks {
				for _, e := range check(c.decide(s)) {
					s.Apply(e)
				}
			}
		case clientCommand:
			for _, s := range clients {
				for _, e := range check(c.decide(s)) {
					s.Apply(e)
				}
			}
		default:
			t.Fatalf("%T decides nothing", cmd)
		}
	})
}

// inOtherFields reports whether clear also appears in a field of cmd that
// is not a password (then an event may carry it legitimately).
func inOtherFields(cmd Command, clear string) bool {
	b, _ := json.Marshal(cmd)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	delete(m, "password")
	b, _ = json.Marshal(m)
	return bytes.Contains(b, []byte(clear))
}
