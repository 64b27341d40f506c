package metrics_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/projections/viewstore"
	"github.com/flmngr/flmngr/services/metrics"
)

// scrape reads /metrics as Prometheus would.
func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, b)
	}
	return string(b)
}

func expect(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l+"\n") {
			t.Errorf("no line %q in:\n%s", l, text)
		}
	}
}

// The counters count what they are told, by label.
func TestCountersCountByLabel(t *testing.T) {
	m := metrics.New(nil)
	m.Appended([]events.Envelope{{Type: events.TaskCreatedV1}, {Type: events.TaskCreatedV1}, {Type: events.TaskDeletedV1}})
	m.Command("task.create", time.Millisecond, false)
	m.Command("task.create", time.Millisecond, true)
	m.Command("task.create", time.Millisecond, true)
	m.Spawned()
	m.Spawned()
	m.Exited("finished")
	m.Exited("errored")
	m.Exited("errored")
	m.StreamOpened()
	m.StreamOpened()
	m.StreamClosed()
	m.FollowerStarted()
	m.Limited("c1")
	m.Refused("x")
	m.Disk(4096, true)
	expect(t, scrape(t, m),
		`flmngr_events_appended_total{type="task.created.v1"} 2`,
		`flmngr_events_appended_total{type="task.deleted.v1"} 1`,
		`flmngr_command_duration_seconds_count{endpoint="task.create",outcome="ok"} 1`,
		`flmngr_command_duration_seconds_count{endpoint="task.create",outcome="error"} 2`,
		`flmngr_supervisor_spawns_total 2`,
		`flmngr_supervisor_exits_total{outcome="finished"} 1`,
		`flmngr_supervisor_exits_total{outcome="errored"} 2`,
		`flmngr_http_streams 1`,
		`flmngr_http_stream_followers 1`,
		`flmngr_client_requests_limited_total 1`,
		`flmngr_requests_refused_total 1`,
		`flmngr_data_volume_free_bytes 4096`,
		`flmngr_data_volume_low 1`,
	)
	m.Disk(8192, false)
	expect(t, scrape(t, m), `flmngr_data_volume_low 0`)
}

// Every method is safe on a nil *Metrics, and its handler serves nothing.
func TestNilMetricsIsSafe(t *testing.T) {
	var m *metrics.Metrics
	m.Appended([]events.Envelope{{Type: events.TaskCreatedV1}})
	m.Command("x", 0, true)
	m.Spawned()
	m.Exited("finished")
	m.HTTP("/", 0)
	m.StreamOpened()
	m.StreamClosed()
	m.FollowerStarted()
	m.FollowerStopped()
	m.Limited("c")
	m.Refused("s")
	m.Disk(0, true)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Fatalf("nil metrics served %d", rec.Code)
	}
}

// Tasks by state and clients online are read from the views when scraped.
func TestStateIsReadFromTheViews(t *testing.T) {
	log := jstest.Log(t)
	views, err := viewstore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- views.Run(ctx, log) }()
	t.Cleanup(func() { cancel(); <-done; views.Close() })
	h := commands.NewHandler(log, commands.Config{})
	for _, c := range []commands.Command{
		commands.CreateTask{TaskID: "a", Host: "h", Port: 1},
		commands.CreateTask{TaskID: "b", Host: "h", Port: 1},
		commands.CreateTask{TaskID: "c", Host: "h", Port: 1, ServerCommand: []string{"server"}},
		commands.StartTask{TaskID: "c"},
		commands.RegisterClient{ClientID: "quiet"},
		commands.RegisterClient{ClientID: "silent"},
	} {
		if _, err := h.Execute(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	// A client's own agent brings it online.
	if _, err := h.Execute(commands.WithSource(context.Background(), commands.AgentSource("edge")), commands.RegisterClient{ClientID: "edge"}); err != nil {
		t.Fatal(err)
	}
	last, err := log.LastSeq(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	if err := views.WaitFor(wctx, last); err != nil {
		t.Fatal(err)
	}
	expect(t, scrape(t, metrics.New(views)),
		`flmngr_tasks{state="idle"} 2`,
		`flmngr_tasks{state="start_requested"} 1`,
		`flmngr_tasks{state="running"} 0`,
		`flmngr_clients{online="true"} 1`,
		`flmngr_clients{online="false"} 2`,
		`flmngr_dead_letters 0`,
	)
}
