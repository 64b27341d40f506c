package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/testkit"
)

// The REST API shows the sites that hold a task's run back until they
// approve it, on the task and on the client, and stops showing it once
// the site approved.
func TestRESTShowsAwaitingApproval(t *testing.T) {
	e := deploy(t, false)
	if code, b := e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"t1","host":"localhost","port":8080}`); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	ctx := context.Background()
	c := api.NewClient(e.cloud.Conn(), 10*time.Second)
	if _, err := c.RegisterClient(ctx, commands.RegisterClient{ClientID: "site-a"}); err != nil {
		t.Fatal(err)
	}
	statement := strings.Repeat("ab", 32)
	report := func(kind string) {
		t.Helper()
		if _, err := c.ReportClientTask(ctx, commands.ReportClientTask{ClientID: "site-a", Kind: kind, TaskID: "t1", Run: "1", SpecSeq: 1, Statement: statement}); err != nil {
			t.Fatal(err)
		}
	}
	var task struct {
		AwaitingApproval []string `json:"awaiting_approval"`
	}
	var client struct {
		AwaitingApproval []struct {
			TaskID    string `json:"task_id"`
			Run       string `json:"run"`
			Statement string `json:"statement_sha256"`
		} `json:"awaiting_approval"`
	}
	read := func() {
		t.Helper()
		task.AwaitingApproval, client.AwaitingApproval = nil, nil
		for path, v := range map[string]any{"/api/v1/tasks/t1": &task, "/api/v1/clients/site-a": &client} {
			code, b := e.json("GET", path, "admin", "")
			if code != 200 {
				t.Fatalf("%s: %d %s", path, code, b)
			}
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	report(commands.ClientTaskAwaitingApproval)
	testkit.WaitFor(t, 10*time.Second, "the task to show site-a awaiting approval", func() error {
		read()
		if len(task.AwaitingApproval) != 1 || task.AwaitingApproval[0] != "site-a" {
			return fmt.Errorf("task: %v", task.AwaitingApproval)
		}
		return nil
	})
	if len(client.AwaitingApproval) != 1 || client.AwaitingApproval[0].Statement != statement || client.AwaitingApproval[0].Run != "1" {
		t.Fatalf("client: %+v", client.AwaitingApproval)
	}
	report(commands.ClientTaskApproved)
	testkit.WaitFor(t, 10*time.Second, "the approval to clear the wait", func() error {
		read()
		if len(task.AwaitingApproval) != 0 || len(client.AwaitingApproval) != 0 {
			return fmt.Errorf("still awaiting: %v %+v", task.AwaitingApproval, client.AwaitingApproval)
		}
		return nil
	})
}
