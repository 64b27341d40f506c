package cloud_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
)

// Status tells the log's size and the views' snapshot: none on a new
// cloud, the one written when it stopped after a restart.
func TestStatusTellsLogSizeAndSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	open := func() (*cloud.Cloud, *api.Client) {
		c, err := cloud.Open(ctx, cloud.Config{DataDir: dir, Listen: "127.0.0.1:0", Name: "status"})
		if err != nil {
			t.Fatal(err)
		}
		return c, api.NewClient(c.Conn(), 10*time.Second)
	}
	c, op := open()
	if _, err := op.CreateTask(ctx, commands.CreateTask{TaskID: "t1", Host: "localhost", Port: 1, ServerCommand: []string{"sleep", "1"}}); err != nil {
		t.Fatal(err)
	}
	// The views take the event after the command is answered; the
	// snapshot written at close holds what they had applied by then.
	var st api.StatusReply
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if st, err = op.Status(ctx); err != nil {
			t.Fatal(err)
		}
		if st.ViewsSeq >= st.StreamSeq {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("views never reached the log: %+v", st)
		}
	}
	if st.StreamBytes == 0 || st.SnapshotTaken != nil || st.SnapshotSeq != 0 {
		t.Fatalf("new cloud: %+v", st)
	}
	c.Close()

	c, op = open()
	defer c.Close()
	st2, err := op.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st2.SnapshotTaken == nil || st2.SnapshotSeq < st.StreamSeq || time.Since(*st2.SnapshotTaken) > time.Minute {
		t.Fatalf("restarted cloud: %+v (log was at %d)", st2, st.StreamSeq)
	}
	if st2.RebuildEstimate != "" {
		t.Fatalf("rebuild estimate %q before any rebuild", st2.RebuildEstimate)
	}
	// A rebuild measures the pace that estimates the next one.
	if _, err := op.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	st3, err := op.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if est, err := time.ParseDuration(st3.RebuildEstimate); err != nil || est <= 0 || st3.RebuildTook == "" {
		t.Fatalf("after a rebuild: estimate %q (%v), took %q", st3.RebuildEstimate, err, st3.RebuildTook)
	}
}
