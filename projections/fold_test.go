package projections_test

import (
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
)

func env(seq uint64, agg events.Aggregate, p events.Payload) events.Envelope {
	return events.Envelope{Seq: seq, Time: time.Unix(int64(seq), 0).UTC(), Aggregate: agg, Type: p.EventType(), Event: p}
}

func TestTaskViewFollowsARun(t *testing.T) {
	a := events.Task("4fe5")
	args := "--rounds 3"
	steps := []struct {
		p       events.Payload
		status  commands.TaskStatus
		running bool
	}{
		{&events.TaskCreated{TaskSpec: events.TaskSpec{Host: "h", Port: 1}}, commands.StatusIdle, false},
		{&events.TaskStartRequested{Run: "1", Arguments: &args}, commands.StatusStartRequested, true},
		{&events.TaskServerStarted{Run: "1", PID: 42}, commands.StatusRunning, true},
		{&events.TaskRoundCompleted{Run: "1", Round: 1, Metrics: map[string]float64{"accuracy": 0.8}}, commands.StatusRunning, true},
		{&events.TaskFinished{Run: "1"}, commands.StatusFinished, false},
		{&events.TaskStartRequested{Run: "2"}, commands.StatusStartRequested, true},
		{&events.TaskErrored{Run: "2", Exception: "boom"}, commands.StatusErrored, false},
	}
	var v *projections.TaskView
	for i, s := range steps {
		v = projections.ApplyTask(v, env(uint64(i+1), a, s.p))
		if v.Status != s.status || v.Running != s.running || v.LastSeq != uint64(i+1) {
			t.Fatalf("after %s: status %s running %v seq %d", s.p.EventType(), v.Status, v.Running, v.LastSeq)
		}
		if i == 3 && (v.ServerPID != 42 || v.Round != 1 || v.Metrics["accuracy"] != 0.8 || *v.Arguments != args) {
			t.Fatalf("run details: %+v", v)
		}
	}
	if v.Run != "2" || v.LastError != "boom" || v.Round != 0 || v.Arguments != nil {
		t.Fatalf("second run: %+v", v)
	}
	if projections.ApplyTask(v, env(99, a, &events.TaskDeleted{})) != nil {
		t.Fatal("a deleted task still has a view")
	}
}

func TestTimelineEntryOfAClientTaskEventNamesTheTask(t *testing.T) {
	e := env(7, events.Client("c1"), &events.ClientTaskStarted{TaskID: "4fe5", Run: "1", PID: 9})
	e.Source = "agent/c1"
	sent := e.Time.Add(-3 * time.Millisecond)
	e.RequestedAt = &sent
	got := projections.Entry(e)
	if got.Sent == nil || !got.Sent.Equal(sent) {
		t.Fatalf("entry sent at %v, want %v", got.Sent, sent)
	}
	if got.Task != "4fe5" || got.Run != "1" || got.Detail != "pid 9" || got.Kind != "client" || got.Aggregate != "c1" || got.Seq != 7 {
		t.Fatalf("entry: %+v", got)
	}
}
