package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/cloud"
)

func keys(ps []pending) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Key
	}
	return out
}

// exerciseJournal keeps reports in a journal, acknowledges some, and
// opens the journal again as an agent that starts again would: it finds
// exactly the reports that wait, in order, with their keys and contents.
func exerciseJournal(t *testing.T, open func() journal) {
	t.Helper()
	j := open()
	left, err := j.load()
	if err != nil || len(left) != 0 {
		t.Fatalf("a new journal holds %v (%v)", keys(left), err)
	}
	var queue []pending
	for i, kind := range []string{commands.ClientTaskStarted, commands.ClientTaskRunning, commands.ClientTaskFinished, commands.ClientTaskExited} {
		p := pending{Key: "agent-" + kind, Task: &commands.ReportClientTask{ClientID: "edge", Kind: kind, TaskID: "quick", Run: "1", PID: i}}
		if err := j.add(&p); err != nil {
			t.Fatal(err)
		}
		queue = append(queue, p)
	}
	// The cloud acknowledges the first report.
	if err := j.acked(queue[0].Key, queue[1:]); err != nil {
		t.Fatal(err)
	}
	queue = queue[1:]
	j.close()

	j = open()
	left, err = j.load()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys(left), keys(queue)) {
		t.Fatalf("after a restart the journal holds %v, want %v", keys(left), keys(queue))
	}
	for i := range left {
		if left[i].Task == nil || left[i].Task.Kind != queue[i].Task.Kind || left[i].Task.PID != queue[i].Task.PID {
			t.Fatalf("report %d came back as %+v", i, left[i].Task)
		}
	}
	// A report made after the restart goes after what was left.
	late := pending{Key: "agent-late", Info: &commands.ReportClientInfo{ClientID: "edge"}}
	if err := j.add(&late); err != nil {
		t.Fatal(err)
	}
	queue = append(left, late)
	for len(queue) > 0 {
		if err := j.acked(queue[0].Key, queue[1:]); err != nil {
			t.Fatal(err)
		}
		queue = queue[1:]
	}
	j.close()
	j = open()
	if left, err = j.load(); err != nil || len(left) != 0 {
		t.Fatalf("after every report was acknowledged the journal holds %v (%v)", keys(left), err)
	}
	j.close()
}

func TestFileJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.jsonl")
	exerciseJournal(t, func() journal { return newFileJournal(path) })
}

// The journal of an edge site lives in its leaf node's own JetStream, on
// the site's disk, and never in the cloud's.
func TestLeafNodeStreamJournal(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := cloud.Open(ctx, cloud.Config{DataDir: filepath.Join(dir, "cloud"), Listen: "127.0.0.1:0", Auth: true,
		LeafNodes: "127.0.0.1:0", Name: "journal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	creds, err := c.IssueClientKey(ctx, "edge")
	if err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(dir, "edge", "leaf")
	open := func() journal {
		ns, err := StartLeaf(LeafConfig{Name: "leaf-edge", Remotes: []string{c.LeafURL()}, Creds: creds, StoreDir: store})
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect("", nats.InProcessServer(ns), nats.CustomInboxPrefix(auth.InboxPrefix("edge")))
		if err != nil {
			t.Fatal(err)
		}
		js, err := jetstream.NewWithDomain(nc, LeafDomain)
		if err != nil {
			t.Fatal(err)
		}
		j := newStreamJournal(js, "edge")
		// Closing the journal shuts its leaf node down, as the end of
		// the agent's process does.
		return closing{j, func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() }}
	}
	exerciseJournal(t, open)
	if _, err := os.Stat(filepath.Join(store, "jetstream")); err != nil {
		t.Fatalf("the leaf node keeps no JetStream files in %s: %v", store, err)
	}
	// The cloud's JetStream has no such stream: the reports stayed on
	// the site until they were sent.
	js := c.Log.JetStream()
	if _, err := js.Stream(ctx, "FLMNGR_OUTBOX_edge"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the cloud's JetStream: %v, want no outbox stream", err)
	}
}

type closing struct {
	journal
	shutdown func()
}

func (c closing) close() { c.journal.close(); c.shutdown() }
