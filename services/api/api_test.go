package api_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/cloud"
)

func TestUnknownFieldIsInvalidAndNamed(t *testing.T) {
	c, _ := openCloud(t)
	nc, err := nats.Connect(c.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg, err := nc.Request(api.SubjectCreateTask, []byte(`{"task_id":"4fe5","host":"h","port":1,"colour":"red"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "invalid" {
		t.Fatalf("error code %q, want invalid", code)
	}
	var e fault.Error
	if err := json.Unmarshal(msg.Data, &e); err != nil || e.Field != "colour" {
		t.Fatalf("error body %s (%v), want field colour", msg.Data, err)
	}
	msg, _ = nc.Request(api.SubjectCreateTask, []byte(`{"task_id":"4fe5","host":"h","port":"error"}`), 5*time.Second)
	if err := json.Unmarshal(msg.Data, &e); err != nil || e.Kind != fault.KindInvalid || e.Field != "port" {
		t.Fatalf("wrong type: %s, want invalid on port", msg.Data)
	}
}

func TestErrorsKeepTheirKind(t *testing.T) {
	_, c := openCloud(t)
	ctx := context.Background()
	if _, err := c.StopTask(ctx, "zzzz"); fault.KindOf(err) != fault.KindNotFound {
		t.Fatalf("stop unknown: %v", err)
	}
	if _, err := c.CreateTask(ctx, commands.CreateTask{TaskID: "a", Host: "h", Port: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTask(ctx, commands.CreateTask{TaskID: "a", Host: "h", Port: 1}); fault.KindOf(err) != fault.KindConflict {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := c.Task(ctx, "zzzz"); fault.KindOf(err) != fault.KindNotFound {
		t.Fatalf("get unknown: %v", err)
	}
	// The create is visible to the very next query.
	if task, err := c.Task(ctx, "a"); err != nil || task.ID != "a" || task.HasPassword {
		t.Fatalf("get after create: %+v, %v", task, err)
	}
}

func TestNoServiceIsUnavailableNotAHang(t *testing.T) {
	nc := jstest.Connect(t, jstest.Server(t, ""))
	c := api.NewClient(nc, 2*time.Second)
	start := time.Now()
	_, err := c.Task(context.Background(), "a")
	if fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("got %v, want unavailable", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("took %s", time.Since(start))
	}
}

// A client that floods the cloud with reports is told to slow down, with
// when to retry; other clients are not affected, and the flood never gets
// more than its burst into the log.
func TestFloodingClientIsRateLimited(t *testing.T) {
	ctx := context.Background()
	c, err := cloud.Open(ctx, cloud.Config{DataDir: filepath.Join(t.TempDir(), "data"), Listen: "127.0.0.1:0", Name: "rate", ClientRate: 5, ClientBurst: 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn := func(id string) *nats.Conn {
		nc, err := nats.Connect(c.ClientURL(), nats.CustomInboxPrefix(auth.InboxPrefix(id)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	flood := api.NewClient(conn("flood"), 5*time.Second).ForClient("flood")
	var ok, limited int
	var retry int64
	for i := range 100 {
		_, err := flood.Report(ctx, commands.ReportClientInfo{Register: true, ClientInfo: commands.ClientInfo{DataQnt: new(int64(i))}})
		switch fault.KindOf(err) {
		case fault.KindRateLimited:
			limited++
			retry = fault.AsError(err).RetryAfterMS
		default:
			if err != nil {
				t.Fatal(err)
			}
			ok++
		}
	}
	// 20 at once, then 5 a second: the loop takes well under 2 s.
	if ok < 20 || ok > 32 || limited != 100-ok || retry <= 0 || retry > 1000 {
		t.Fatalf("%d accepted, %d limited (retry after %d ms); want about 20 accepted and the rest limited", ok, limited, retry)
	}
	calm := api.NewClient(conn("calm"), 5*time.Second).ForClient("calm")
	if _, err := calm.Report(ctx, commands.ReportClientInfo{Register: true}); err != nil {
		t.Fatalf("another client while one floods: %v", err)
	}
	stored, _ := c.Log.Load(ctx, events.Client("flood"), 0)
	if len(stored) != ok {
		t.Fatalf("%d events of the flooding client, want %d", len(stored), ok)
	}
}
