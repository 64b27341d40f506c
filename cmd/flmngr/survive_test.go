package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
)

// gatewayURL is the HTTP address `flmngr up` printed last.
func (s *site) gatewayURL() string {
	out := s.upOut.String()
	i := strings.LastIndex(out, "HTTP:  ")
	if i < 0 {
		s.t.Fatal("flmngr up printed no HTTP address")
	}
	return strings.Fields(out[i+len("HTTP:  "):])[0]
}

// A task password is kept only as a bcrypt hash: after a whole run, with
// files downloaded under it, no file under the deployment's and the
// clients' directories, no view, no event, no API answer and no line
// any process printed holds it in clear.
func TestPasswordNeverInClear(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.startUp()
	s.startAgent("site-1", "")
	s.startAgent("site-2", "")
	b := make([]byte, 12)
	rand.Read(b)
	password := "pw-" + hex.EncodeToString(b)
	s.fedavgTask("sec", "--rounds 2", "", "--username", "alice", "--password", password)
	s.cli("task", "start", "sec")
	s.waitStatus("sec", 2*time.Minute, "finished")

	// The hash works: the original's download endpoint takes the password.
	base := s.gatewayURL()
	get := func(path, user, pass string) (int, []byte) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, body
	}
	if code, _ := get("/download/sec/fedavg.json", "alice", password); code != 200 {
		t.Fatalf("download with the password: %d", code)
	}
	if code, _ := get("/download/sec/fedavg.json", "alice", password+"x"); code != 401 {
		t.Fatalf("download with a wrong password: %d", code)
	}
	token, _ := os.ReadFile(filepath.Join(s.data, "admin-token"))
	var answers [][]byte
	for _, path := range []string{"/api/v1/tasks/sec", "/api/v1/tasks", "/api/v1/timeline?task=sec&limit=1000", "/api/v1/clients/site-1"} {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answers = append(answers, body)
	}
	res, err := http.Post(base+"/rpc_exec_get_task_by_id", "application/json", strings.NewReader(`{"task_id":"sec"}`))
	if err == nil {
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		answers = append(answers, body)
	}
	answers = append(answers, []byte(s.cli("task", "get", "sec", "--json")), []byte(s.cli("timeline", "sec")), []byte(s.cli("events")))
	for i, a := range answers {
		if bytes.Contains(a, []byte(password)) {
			t.Fatalf("answer %d holds the password in clear:\n%s", i, a)
		}
	}
	created := s.timeline(projections.TimelineQuery{Task: "sec"})
	if count(created, events.TaskCreatedV1, "sec") != 1 {
		t.Fatal("no task.created event")
	}

	for id := range s.agents {
		s.signalAgent(id, syscall.SIGTERM)
	}
	s.stopUp()
	last, views := storedViewsEqualRebuild(t, s.data)
	for k, v := range views {
		if strings.Contains(v, password) {
			t.Fatalf("view %s holds the password in clear", k)
		}
	}
	hashed := false
	for _, v := range views {
		hashed = hashed || strings.Contains(v, `"password_hash":"$2a$`)
	}
	if !hashed {
		t.Fatal("no view holds a bcrypt hash of the password")
	}
	files := 0
	err = filepath.Walk(s.dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || !info.Mode().IsRegular() {
			return err
		}
		files++
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s holds the password in clear", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"flmngr up": s.upOut.String(), "site-1": s.agentOut["site-1"].String(), "site-2": s.agentOut["site-2"].String()} {
		if strings.Contains(out, password) {
			t.Errorf("the output of %s holds the password in clear", name)
		}
	}
	t.Logf("password searched in %d files (%d events), %d views, %d answers and 3 processes' output", files, last, len(views), len(answers))
}

// SIGKILL to `flmngr up` while a FedAvg task trains: started again, its
// views equal a rebuild from the log, the run is recorded as interrupted
// (its server process is gone, not left "running"), and the operator can
// start the task again and see it finish.
func TestSIGKILLCloudMidRun(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.startUp()
	s.startAgent("site-1", "")
	s.startAgent("site-2", "")
	s.fedavgTask("fa", "--rounds 200", "")
	s.cli("task", "start", "fa")
	s.waitFor("round 2", 2*time.Minute, func() error {
		if tk := s.task("fa"); tk.Round < 2 {
			return errorf("task fa at round %d (%s)", tk.Round, tk.Status)
		}
		return nil
	})
	before := s.task("fa")
	st, _ := s.api.Status(context.Background())
	server := before.ServerPID
	if !alive(server) {
		t.Fatalf("server process %d of the run is not alive", server)
	}
	s.killUp()
	t.Logf("SIGKILL at round %d, %d events in the log", before.Round, st.StreamSeq)
	s.waitFor("the server process to die with the cloud", 10*time.Second, func() error {
		if alive(server) {
			return errorf("server process %d still alive", server)
		}
		return nil
	})

	s.startUp()
	after := s.waitStatus("fa", 30*time.Second, "interrupted")
	if after.Run != before.Run || after.Running {
		t.Fatalf("after the restart: run %s running %v, want run %s not running", after.Run, after.Running, before.Run)
	}
	st2, _ := s.api.Status(context.Background())
	t.Logf("after the restart: %d events (%d more: the interrupted run and what the clients reported)", st2.StreamSeq, st2.StreamSeq-st.StreamSeq)

	// Started again, it runs to the end.
	s.cli("task", "start", "fa", "--arguments", "--rounds 2")
	again := s.waitStatus("fa", 2*time.Minute, "finished")
	if again.Run == before.Run || again.Round != 2 {
		t.Fatalf("second run %s ended at round %d", again.Run, again.Round)
	}
	tl := s.timeline(projections.TimelineQuery{Task: "fa"})
	if n := count(tl, events.TaskInterruptedV1, "fa"); n != 1 {
		t.Fatalf("%d interrupted runs recorded, want 1", n)
	}
	if n := count(tl, events.TaskServerStartedV1, "fa"); n != 2 {
		t.Fatalf("%d server starts, want 2 (one per run)", n)
	}
	for id := range s.agents {
		s.signalAgent(id, syscall.SIGTERM)
	}
	s.stopUp()
	last, _ := storedViewsEqualRebuild(t, s.data)
	t.Logf("views equal a rebuild of %d events", last)
}

// SIGKILL to a client agent while its task trains: its client process
// dies with it; started again, the agent leaves no process of its
// earlier life, still refuses the task it quarantined, and runs the next
// run with the others.
func TestSIGKILLAgentMidRun(t *testing.T) {
	t.Parallel()
	s := newSite(t)
	s.startUp()
	// E fails on every client (quarantined there); F is the next match.
	s.fedavgTask("E", "--rounds 2 --wait 20s", "test-error")
	s.fedavgTask("F", "--rounds 200", "")
	s.cli("task", "start", "E")
	s.cli("task", "start", "F")
	s.startAgent("site-1", "")
	s.startAgent("site-2", "")
	s.waitFor("round 2 of F", 2*time.Minute, func() error {
		if tk := s.task("F"); tk.Round < 2 {
			return errorf("task F at round %d (%s)", tk.Round, tk.Status)
		}
		return nil
	})
	u, err := s.api.User(context.Background(), "site-1")
	if err != nil || len(u.Running) != 1 || u.Running[0].TaskID != "F" {
		t.Fatalf("site-1 runs %+v (%v), want F", u.Running, err)
	}
	if len(u.Quarantined) != 1 || u.Quarantined[0].TaskID != "E" {
		t.Fatalf("site-1 quarantined %+v, want E", u.Quarantined)
	}
	client := u.Running[0].PID
	s.signalAgent("site-1", syscall.SIGKILL)
	s.waitFor("the client process to die with its agent", 10*time.Second, func() error {
		if alive(client) {
			return errorf("client process %d still alive", client)
		}
		return nil
	})
	// F's server lost a client in the middle of a round: the run ends.
	s.waitStatus("F", time.Minute, "errored", "finished")

	s.startAgent("site-1", "")
	s.waitFor("site-1 back", 30*time.Second, func() error {
		u, err := s.api.User(context.Background(), "site-1")
		if err != nil {
			return err
		}
		if len(u.Running) != 0 {
			return errorf("site-1 runs %+v", u.Running)
		}
		if len(u.Quarantined) != 1 {
			return errorf("site-1 quarantined %+v", u.Quarantined)
		}
		tl := s.timeline(projections.TimelineQuery{Client: "site-1"})
		if count(tl, events.ClientTaskInterruptedV1, "F") != 1 {
			return errorf("site-1's run of F is not recorded as interrupted")
		}
		return nil
	})
	s.cli("task", "start", "F", "--arguments", "--rounds 2")
	s.waitStatus("F", 2*time.Minute, "finished")
	// The server's end is recorded first; site-1's reports follow it.
	var tl []projections.TimelineEntry
	s.waitFor("site-1's reports of F's new run", 30*time.Second, func() error {
		tl = s.timeline(projections.TimelineQuery{Client: "site-1"})
		if count(tl, events.ClientTaskExitedV1, "F") < 1 || count(tl, events.ClientTaskFinishedV1, "F") < 1 {
			return errorf("site-1 has not reported F's end yet")
		}
		return nil
	})
	if n := count(tl, events.ClientTaskStartedV1, "E"); n != 1 {
		t.Fatalf("site-1 started E %d times, want once: its quarantine did not hold", n)
	}
	if n := count(tl, events.ClientTaskFinishedV1, "F"); n != 1 {
		t.Fatalf("site-1 finished F %d times, want once", n)
	}
	// Never two client processes of one task at once: each start of F on
	// site-1 follows the end (exit or interruption) of the one before.
	open := 0
	for _, e := range tl {
		if e.Task != "F" {
			continue
		}
		switch e.Type {
		case events.ClientTaskStartedV1:
			if open++; open > 1 {
				t.Fatalf("site-1 started F at %d while another process of it ran", e.Seq)
			}
		case events.ClientTaskExitedV1, events.ClientTaskInterruptedV1:
			open = max(0, open-1)
		}
	}
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
