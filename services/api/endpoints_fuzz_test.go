package api_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
)

// fuzzSubjects are the endpoints a fuzzed body is sent to: every command
// and query an operator or a client may send (the admin rebuild aside).
var fuzzSubjects = []string{
	api.SubjectCreateTask, api.SubjectUpdateTask, api.SubjectDeleteTask, api.SubjectStartTask, api.SubjectStopTask,
	api.SubjectRegisterClient, api.SubjectReportClient, api.SubjectClientTask, api.SubjectIssueKey, api.SubjectRevokeKey, api.SubjectIssueCap, api.SubjectRevokeCap,
	api.SubjectTaskFiles, api.SubjectGetTask, api.SubjectListTasks, api.SubjectGetClient, api.SubjectListClient,
	api.SubjectTimeline, api.SubjectStatus, api.SubjectMatch, api.SubjectCheckCreds, api.SubjectEvents, api.SubjectLogs,
	api.SubjectFilePart, api.SubjectTaskUpload,
	api.ClientSubject("c1", api.VerbReport), api.ClientSubject("c1", api.VerbTask), api.ClientSubject("c1", api.VerbHistory),
	api.ClientSubject("c1", api.VerbOffers), api.ClientSubject("c1", api.VerbFile), api.ClientSubject("c1", api.VerbTasks),
}

// FuzzEndpoints sends arbitrary bodies to every endpoint of a running
// cloud: each gets an answer in time, a refusal is one of the documented
// error kinds (never internal) with a message, and a success is JSON.
// The cloud is one for the whole run, so state builds up as a fuzzer's
// inputs create tasks and clients.
func FuzzEndpoints(f *testing.F) {
	for _, s := range []string{
		`{"task_id":"4fe5","host":"localhost","port":8080,"username":"user","password":"123","files_paths":["client.py","task.py"],"selection_criteria":"\"camera\" in sensors","tags":["mnist","MLP","test"]}`,
		`{"task_id":"4fe5","selection_criteria":"map(1..99999999, #)"}`,
		`{"task_id":"4fe5","files":[{"name":"../../etc/passwd","size":3,"sha256":"00"}]}`,
		`{"id":"4fe5"}`, `{"criterion":"\"camera\" in sensors"}`, `{"after":18446744073709551615,"limit":-1}`,
		`{"user_id":"c1","sensors":["camera"],"data_qnt":5}`, `{"user_id":"c2","sensors":["camera"]}`,
		`{"user_id":"c1","kind":"started","task_id":"4fe5","run":"1","pid":7}`,
		`{"task_id":"4fe5","file":"server.py","offset":-5}`, `{"task_id":"4fe5","username":"user","password":"123"}`,
		``, `{}`, `null`, `[]`, `{"task_id":1}`, "\xff\xfe", `{"task_id":"a","task_id":"b"}`,
	} {
		for i := range fuzzSubjects {
			f.Add(uint8(i), []byte(s))
		}
	}
	c, _ := openCloud(f)
	nc, err := nats.Connect(c.ClientURL())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(nc.Close)
	// Client c1's own subjects answer on its own inbox only.
	c1, err := nats.Connect(c.ClientURL(), nats.CustomInboxPrefix(auth.InboxPrefix("c1")))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(c1.Close)
	kinds := []string{string(fault.KindInvalid), string(fault.KindNotFound), string(fault.KindConflict),
		string(fault.KindForbidden), string(fault.KindRateLimited)}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		subject := fuzzSubjects[int(which)%len(fuzzSubjects)]
		conn := nc
		if strings.HasPrefix(subject, api.ClientPrefix+".") {
			conn = c1
		}
		msg, err := conn.Request(subject, body, 15*time.Second)
		if err != nil {
			t.Fatalf("%s %q: no answer: %v", subject, body, err)
		}
		code := msg.Header.Get(micro.ErrorCodeHeader)
		if code == "" {
			if subject != api.ClientSubject("c1", api.VerbFile) && !json.Valid(msg.Data) {
				t.Fatalf("%s %q: success that is not JSON: %q", subject, body, msg.Data)
			}
			return
		}
		var e fault.Error
		if err := json.Unmarshal(msg.Data, &e); err != nil || e.Message == "" || string(e.Kind) != code {
			t.Fatalf("%s %q: error %s with body %q is not a fault.Error of that kind", subject, body, code, msg.Data)
		}
		if !slices.Contains(kinds, code) {
			t.Fatalf("%s %q: error kind %s: %s", subject, body, code, e.Message)
		}
	})
}
