package commands

import (
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// A signature is recorded only over the task as it is; a change of its
// files or spec voids the signatures it had.
func TestSignTask(t *testing.T) {
	kp, _ := nkeys.CreateOperator()
	var s TaskState
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	apply := func(seq uint64, p events.Payload) {
		env, err := events.New("e", "test", events.Task("T"), at, p)
		if err != nil {
			t.Fatal(err)
		}
		env.Seq = seq
		s.Apply(env)
	}
	apply(1, &events.TaskCreated{TaskSpec: events.TaskSpec{Host: "h", Port: 1, FilesPaths: []string{"client.py"}}})
	apply(2, &events.TaskFilesUploaded{Files: []events.FileRef{{Name: "client.py", Size: 1, SHA256: "aa"}}})
	sig, err := events.SignTask(kp, s.Statement("T"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := SignTask{TaskID: "T", TaskSignature: sig}.decide(s)
	if err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	apply(3, got[0])
	if len(s.Signatures) != 1 || s.SpecSeq != 3 {
		t.Fatalf("signatures %v spec seq %d", s.Signatures, s.SpecSeq)
	}
	if again, err := (SignTask{TaskID: "T", TaskSignature: sig}).decide(s); err != nil || len(again) != 0 {
		t.Fatalf("the same signature again: %v %v", again, err)
	}
	apply(4, &events.TaskFilesUploaded{Files: []events.FileRef{{Name: "client.py", Size: 1, SHA256: "bb"}}})
	if len(s.Signatures) != 0 {
		t.Fatal("a new file left the old signature")
	}
	if _, err := (SignTask{TaskID: "T", TaskSignature: sig}).decide(s); fault.KindOf(err) != fault.KindConflict {
		t.Fatalf("a signature over the old files: got %v, want conflict", err)
	}
}
