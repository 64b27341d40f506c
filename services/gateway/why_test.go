package gateway_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/services/api"
)

// A client's page says why each active task is or is not offered to it
// as the matcher decided, also for a client the task never was offered
// to (whose offers, and so whose recorded decisions, never changed).
func TestClientWhyIsTheMatchersDecisions(t *testing.T) {
	e := deploy(t, false)
	ctx := context.Background()
	op := api.NewClient(e.cloud.Conn(), 30*time.Second).WithSource("test")
	for id, sensors := range map[string][]string{"cam": {"camera"}, "gps": {"gps"}} {
		if _, err := op.RegisterClient(ctx, commands.RegisterClient{ClientID: id, ClientInfo: commands.ClientInfo{Sensors: &sensors}}); err != nil {
			t.Fatal(err)
		}
	}
	const crit = `"camera" in sensors`
	if _, err := op.CreateTask(ctx, commands.CreateTask{TaskID: "t1", Host: "127.0.0.1", Port: 1, SelectionCriteria: crit,
		ServerCommand: []string{"sleep", "60"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := op.StartTask(ctx, commands.StartTask{TaskID: "t1"}); err != nil {
		t.Fatal(err)
	}
	why := func(id string) []events.Decision {
		code, b := e.json("GET", "/api/v1/clients/"+id, "admin", "")
		if code != 200 {
			t.Fatalf("GET client %s: %d %s", id, code, b)
		}
		var c struct {
			Why []events.Decision `json:"why"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c.Why
	}
	jstest.WaitFor(t, 30*time.Second, "cam to be offered t1", func() bool {
		u, err := op.User(ctx, "cam")
		return err == nil && len(u.Offers) == 1
	})
	for id, matched := range map[string]bool{"cam": true, "gps": false} {
		w := why(id)
		if len(w) != 1 || w[0].TaskID != "t1" || w[0].Criterion != crit || w[0].Matched != matched || w[0].Error != "" {
			t.Errorf("why of %s = %+v, want t1 %s matched=%v", id, w, crit, matched)
		}
	}
	if u, err := op.User(ctx, "gps"); err != nil || len(u.Decisions) != 1 || u.Decisions[0].Matched {
		t.Errorf("the API's view of gps has decisions %+v (%v), want t1 not matched", u.Decisions, err)
	}
}
