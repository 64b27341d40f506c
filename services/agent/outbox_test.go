package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
)

// outboxCloud is a cloud with identities on and a registered client's
// own endpoints.
func outboxCloud(t *testing.T, id string) (*cloud.Cloud, *api.ClientConn, *nats.Conn) {
	t.Helper()
	ctx := context.Background()
	c, err := cloud.Open(ctx, cloud.Config{DataDir: filepath.Join(t.TempDir(), "cloud"), Listen: "127.0.0.1:0", Auth: true, Name: "outbox"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	nc, err := c.ConnectClient(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	conn := api.NewClient(nc, 10*time.Second).ForClient(id)
	if _, err := conn.Report(ctx, commands.ReportClientInfo{Register: true}); err != nil {
		t.Fatal(err)
	}
	return c, conn, nc
}

// failover queues what an agent reports when a task fails and it turns
// to the next: errored, quarantined, downloaded and started.
func failover(o *outbox) []string {
	kinds := []string{commands.ClientTaskErrored, commands.ClientTaskQuarantined, commands.ClientTaskDownloaded, commands.ClientTaskStarted}
	for i, k := range kinds {
		task := "E"
		if i >= 2 {
			task = "C"
		}
		o.add(pending{Task: &commands.ReportClientTask{Kind: k, TaskID: task, Run: "1", Exception: "boom"}})
	}
	return kinds
}

// Reports that wait together go in one request and one append, in order,
// each with its own time; an attributes report goes alone, in its place.
func TestOutboxSendsWaitingReportsTogether(t *testing.T) {
	ctx := context.Background()
	c, conn, _ := outboxCloud(t, "edge")
	var requests atomic.Int32
	send, sendMany := sendTo(conn), sendManyTo(conn)
	o := newOutbox(func(ctx context.Context, p pending) error { requests.Add(1); return send(ctx, p) },
		func(ctx context.Context, ps []pending) ([]error, error) { requests.Add(1); return sendMany(ctx, ps) }, slog.New(slog.DiscardHandler))
	kinds := failover(o)
	o.add(pending{Info: &commands.ReportClientInfo{ClientInfo: commands.ClientInfo{DataQnt: new(int64(7))}}})
	o.add(pending{Task: &commands.ReportClientTask{Kind: commands.ClientTaskRunning, TaskID: "C", Run: "1"}})
	o.add(pending{Task: &commands.ReportClientTask{Kind: "no-such-kind", TaskID: "C", Run: "1"}}) // refused, dropped
	o.mu.Lock()
	queued := slices.Clone(o.queue)
	o.mu.Unlock()
	before, _ := c.Log.LastSeq(ctx)
	drain(ctx, t, o)
	if n := requests.Load(); n != 3 {
		t.Fatalf("%d requests for 7 reports, want 3 (4 task reports, 1 attributes report, 2 task reports)", n)
	}
	evs, err := c.Log.Load(ctx, events.Client("edge"), before)
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{}, kinds...), "info", commands.ClientTaskRunning)
	if len(evs) != len(want) {
		t.Fatalf("%d events stored, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if !e.RequestedAt.Equal(queued[i].At) {
			t.Errorf("event %d (%s) requested at %v, reported at %v", i, e.Type, e.RequestedAt, queued[i].At)
		}
		if i < 4 && e.Type != "client.task_"+want[i]+".v1" {
			t.Errorf("event %d is %s, want %s", i, e.Type, want[i])
		}
	}
	if evs[4].Type != events.ClientInfoReportedV1 {
		t.Errorf("event 4 is %s, want the attributes report", evs[4].Type)
	}
	// The first four went in one request, stored one after the other.
	if evs[3].Seq != evs[0].Seq+3 {
		t.Errorf("the batch was not stored together: seqs %d..%d", evs[0].Seq, evs[3].Seq)
	}
}

// An agent facing a cloud that takes no batches sends its reports one by
// one, none lost.
func TestOutboxFallsBackToOneByOne(t *testing.T) {
	ctx := context.Background()
	c, conn, nc := outboxCloud(t, "edge")
	// What an older cloud is to a batch: a subject nobody answers.
	old := func(ctx context.Context, _ []pending) ([]error, error) {
		_, err := nc.RequestWithContext(ctx, api.ClientSubject("edge", "tasks-unknown"), []byte("{}"))
		return nil, err
	}
	o := newOutbox(sendTo(conn), old, slog.New(slog.DiscardHandler))
	kinds := failover(o)
	before, _ := c.Log.LastSeq(ctx)
	drain(ctx, t, o)
	evs, err := c.Log.Load(ctx, events.Client("edge"), before)
	if err != nil || len(evs) != len(kinds) {
		t.Fatalf("%d events stored, want %d: %v", len(evs), len(kinds), err)
	}
}

// drain runs the outbox until it has sent every report it holds, then
// stops it.
func drain(ctx context.Context, t *testing.T, o *outbox) {
	t.Helper()
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); o.run(rctx, nil) }()
	defer func() { stop(); <-done }()
	select {
	case <-o.drained():
	case <-time.After(30 * time.Second):
		t.Fatalf("%d reports still wait", o.Len())
	}
}
