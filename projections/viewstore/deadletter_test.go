package viewstore_test

import (
	"context"
	"strings"
	"testing"

	"github.com/flmngr/flmngr/projections"
)

// Messages in the stream that are no readable event (what a poisoned log
// holds) are set aside as dead letters, by the running views and by a
// rebuild alike; every event around them is applied, and the two agree.
func TestDeadLettersDoNotStopTheViews(t *testing.T) {
	ctx := context.Background()
	log, h := newLog(t)
	inc := openStore(t, t.TempDir())
	stop := run(t, inc, log)
	workload(t, h, 0, 4)
	for _, poison := range []struct{ subject, body string }{
		{"flmngr.ev.client.evil.forged.v1", ``},
		{"flmngr.ev.task.t000.created.v1", `{"id":"x"}`},
		{"flmngr.ev.task.t001.teleported.v1", `{"id":"y","type":"task.teleported.v1","time":"2020-01-01T00:00:00Z","source":"supervisor/vm","aggregate":{"kind":"task","id":"t001"},"payload":{}}`},
		{"flmngr.ev.task.t002.created.v1", "\xff\xfe not json"},
	} {
		if err := log.Conn().Publish(poison.subject, []byte(poison.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := log.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	workload(t, h, 4, 8)
	waitCaughtUp(t, inc, log)
	stop()
	n, last, err := inc.DeadLetters()
	if err != nil || n != 4 {
		t.Fatalf("%d dead letters (%v), want 4", n, err)
	}
	if last == nil || last.Head != "\ufffd not json" || last.Error == "" {
		t.Fatalf("last dead letter: %+v", last)
	}
	tasks, err := inc.Tasks(projections.TaskFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		if strings.HasPrefix(task.Spec.Host, "2020") {
			t.Fatalf("a forged event reached the views: %+v", task)
		}
	}
	if len(tasks) == 0 {
		t.Fatal("no task applied around the poison")
	}

	fresh := openStore(t, t.TempDir())
	if _, err := fresh.RebuildOffline(ctx, log); err != nil {
		t.Fatalf("a rebuild over dead letters: %v", err)
	}
	compare(t, "rebuilt over dead letters", dump(t, inc), dump(t, fresh))
}
