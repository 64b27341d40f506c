package commands

import (
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// Limits are kept in their canonical form; bad ones are refused with the
// reason and nothing is stored.
func TestTaskLimits(t *testing.T) {
	with := func(limits string) CreateTask { c := valid4fe5(); c.Limits = limits; return c }
	limited := func(limits string) events.TaskSpec { s := spec4fe5; s.Limits = limits; return s }
	created := foldTask(&events.TaskCreated{TaskSpec: limited("memory=2GiB")})
	runTaskCases(t, []decideCase{
		{name: "canonical", cmd: with(" walltime=120m, memory=2048MiB ,cpu=2"),
			want: []events.Payload{&events.TaskCreated{TaskSpec: limited("cpu=2,memory=2GiB,walltime=2h")}}},
		{name: "none", cmd: with(""), want: []events.Payload{&events.TaskCreated{TaskSpec: spec4fe5}}},
		{name: "bad_unit", cmd: with("memory=2XB"), wantKind: fault.KindInvalid, wantField: "limits", wantText: `limits: memory=2XB: unknown unit "XB"`},
		{name: "unknown_limit", cmd: with("gpu=1"), wantKind: fault.KindInvalid, wantField: "limits", wantText: `unknown limit "gpu"`},
		{name: "zero", cmd: with("pids=0"), wantKind: fault.KindInvalid, wantField: "limits", wantText: "must be above zero"},
		{name: "negative", cmd: with("memory=-1"), wantKind: fault.KindInvalid, wantField: "limits"},
		{name: "twice", cmd: with("cpu=1,cpu=2"), wantKind: fault.KindInvalid, wantField: "limits", wantText: "twice"},
		{name: "too_long", cmd: with("cpu=1" + string(make([]byte, 300))), wantKind: fault.KindInvalid, wantField: "limits", wantText: "longer than"},
		{name: "update", state: created, cmd: UpdateTask{TaskID: "4fe5", Limits: ptr("memory=1GiB,pids=64")},
			want: []events.Payload{&events.TaskUpdated{TaskSpec: limited("memory=1GiB,pids=64"), Changed: []string{"limits"}}}},
		{name: "update_same_limits_written_otherwise", state: created, cmd: UpdateTask{TaskID: "4fe5", Limits: ptr("memory=2048MiB")}},
		{name: "update_removes", state: created, cmd: UpdateTask{TaskID: "4fe5", Limits: ptr("")},
			want: []events.Payload{&events.TaskUpdated{TaskSpec: spec4fe5, Changed: []string{"limits"}}}},
		{name: "update_bad_never_stored", state: created, cmd: UpdateTask{TaskID: "4fe5", Limits: ptr("memory=lots")}, wantKind: fault.KindInvalid, wantField: "limits"},
	})
}

// A signature covers the limits: the same task with its limits loosened
// or removed does not verify, and a task without limits states what it
// stated before tasks had limits.
func TestSignatureCoversLimits(t *testing.T) {
	kp, _ := nkeys.CreateOperator()
	state := func(limits string) TaskState {
		return foldTask(&events.TaskCreated{TaskSpec: events.TaskSpec{Host: "h", Port: 1, Limits: limits}})
	}
	sig, err := events.SignTask(kp, state("memory=64MiB").Statement("T"))
	if err != nil {
		t.Fatal(err)
	}
	for _, limits := range []string{"memory=1GiB", ""} {
		if err := sig.Verify(state(limits).Statement("T")); err == nil {
			t.Errorf("a signature over memory=64MiB verifies for limits %q", limits)
		}
		if _, err := (SignTask{TaskID: "T", TaskSignature: sig}).decide(state(limits)); fault.KindOf(err) != fault.KindConflict {
			t.Errorf("limits %q: got %v, want a conflict", limits, err)
		}
	}
	const before = `flmngr task statement v1
{"task":"T","host":"h","port":1,"client_command":null,"client_arguments":null,"files":[]}`
	if got := string(events.TaskStatement(state("").Statement("T"))); got != before {
		t.Fatalf("the statement of a task without limits changed:\n got %s\nwant %s", got, before)
	}
}
