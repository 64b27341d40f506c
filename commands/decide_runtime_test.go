package commands

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

func TestRecordRun(t *testing.T) {
	created := &events.TaskCreated{TaskSpec: spec4fe5}
	waiting := foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"})
	running := foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"}, &events.TaskServerStarted{Run: "1", PID: 5})
	finished := foldTask(created, serverPy, &events.TaskStartRequested{Run: "1"}, &events.TaskFinished{Run: "1"})
	rec := func(p events.Payload) RecordRun { return RecordRun{TaskID: "4fe5", Event: p} }
	one := func(p events.Payload) []events.Payload { return []events.Payload{p} }
	started := &events.TaskServerStarted{Run: "1", PID: 9}
	round := &events.TaskRoundCompleted{Run: "1", Round: 2}
	runTaskCases(t, []decideCase{
		{name: "started", state: waiting, cmd: rec(started), want: one(started)},
		{name: "started_twice", state: running, cmd: rec(started), wantKind: fault.KindConflict, wantText: "not waiting to start"},
		{name: "started_stale_run", state: waiting, cmd: rec(&events.TaskServerStarted{Run: "0"}), wantKind: fault.KindConflict, wantText: "is over"},
		{name: "round", state: running, cmd: rec(round), want: one(round)},
		{name: "finished", state: running, cmd: rec(&events.TaskFinished{Run: "1"}), want: one(&events.TaskFinished{Run: "1"})},
		{name: "finished_again_is_nothing", state: finished, cmd: rec(&events.TaskFinished{Run: "1"})},
		{name: "errored_after_finish_is_nothing", state: finished, cmd: rec(&events.TaskErrored{Run: "1"})},
		{name: "exit_after_finish_is_recorded", state: finished, cmd: rec(&events.TaskServerExited{Run: "1"}), want: one(&events.TaskServerExited{Run: "1"})},
		{name: "not_a_server_event", state: running, cmd: rec(&events.TaskDeleted{}), wantKind: fault.KindInvalid, wantField: "event"},
	})
}

func TestRecordTaskFiles(t *testing.T) {
	sha := strings.Repeat("0f", 32)
	f := events.FileRef{Name: "server.py", Size: 3, SHA256: sha}
	created := foldTask(&events.TaskCreated{TaskSpec: spec4fe5})
	batch := func(from, n int) []events.FileRef {
		var fs []events.FileRef
		for i := from; i < from+n; i++ {
			fs = append(fs, events.FileRef{Name: fmt.Sprintf("f%04d", i), Size: 1, SHA256: sha})
		}
		return fs
	}
	full := foldTask(&events.TaskCreated{TaskSpec: spec4fe5}, &events.TaskFilesUploaded{Files: batch(0, maxTaskFiles)})
	runTaskCases(t, []decideCase{
		{name: "one_too_many_across_uploads", state: full, cmd: RecordTaskFiles{TaskID: "4fe5", Files: batch(maxTaskFiles, 1)}, wantKind: fault.KindInvalid, wantField: "files"},
		{name: "replacing_in_a_full_task", state: full, cmd: RecordTaskFiles{TaskID: "4fe5", Files: []events.FileRef{{Name: "f0000", Size: 2, SHA256: sha}}},
			want: []events.Payload{&events.TaskFilesUploaded{Files: []events.FileRef{{Name: "f0000", Size: 2, SHA256: sha}}}}},
		{name: "upload", state: created, cmd: RecordTaskFiles{TaskID: "4fe5", Files: []events.FileRef{f}}, want: []events.Payload{&events.TaskFilesUploaded{Files: []events.FileRef{f}}}},
		{name: "same_again_is_nothing", state: foldTask(&events.TaskCreated{TaskSpec: spec4fe5}, &events.TaskFilesUploaded{Files: []events.FileRef{f}}), cmd: RecordTaskFiles{TaskID: "4fe5", Files: []events.FileRef{f}}},
		{name: "unknown_task", cmd: RecordTaskFiles{TaskID: "zzzz", Files: []events.FileRef{f}}, wantKind: fault.KindNotFound},
		{name: "escaping_name", state: created, cmd: RecordTaskFiles{TaskID: "4fe5", Files: []events.FileRef{{Name: "../x", SHA256: sha}}}, wantKind: fault.KindInvalid, wantField: "files"},
		{name: "absolute_name", state: created, cmd: RecordTaskFiles{TaskID: "4fe5", Files: []events.FileRef{{Name: "/etc/x", SHA256: sha}}}, wantKind: fault.KindInvalid, wantField: "files"},
		{name: "bad_digest", state: created, cmd: RecordTaskFiles{TaskID: "4fe5", Files: []events.FileRef{{Name: "a", SHA256: "xyz"}}}, wantKind: fault.KindInvalid, wantField: "files"},
		{name: "no_files", state: created, cmd: RecordTaskFiles{TaskID: "4fe5"}, wantKind: fault.KindInvalid, wantField: "files"},
	})
}

func TestClientRuntimeCommands(t *testing.T) {
	reg := &events.ClientRegistered{Attributes: events.ClientAttributes{Sensors: []string{"camera"}}}
	offer := events.Offer{TaskID: "E", Run: "1", SpecSeq: 3, Host: "h", Port: 1}
	running := foldClient(reg, &events.ClientTaskStarted{TaskID: "E", Run: "1", PID: 7})
	cases := []struct {
		name  string
		state ClientState
		cmd   interface {
			decide(ClientState) ([]events.Payload, error)
		}
		want     []events.Payload
		wantKind fault.Kind
	}{
		{name: "offers", state: foldClient(reg), cmd: RecordOffers{ClientID: "c", Offers: []events.Offer{offer}, Cause: "x"},
			want: []events.Payload{&events.ClientOffersChanged{Offers: []events.Offer{offer}, Cause: "x"}}},
		{name: "same_offers_are_nothing", state: foldClient(reg, &events.ClientOffersChanged{Offers: []events.Offer{offer}}), cmd: RecordOffers{ClientID: "c", Offers: []events.Offer{offer}, Cause: "y"}},
		{name: "no_offers_after_some", state: foldClient(reg, &events.ClientOffersChanged{Offers: []events.Offer{offer}}), cmd: RecordOffers{ClientID: "c"},
			want: []events.Payload{&events.ClientOffersChanged{Offers: []events.Offer{}}}},
		{name: "offers_unknown_client", cmd: RecordOffers{ClientID: "c"}, wantKind: fault.KindNotFound},
		{name: "started", state: foldClient(reg), cmd: ReportClientTask{ClientID: "c", Kind: "started", TaskID: "E", Run: "1", PID: 7},
			want: []events.Payload{&events.ClientTaskStarted{TaskID: "E", Run: "1", PID: 7}}},
		{name: "started_twice_is_nothing", state: running, cmd: ReportClientTask{ClientID: "c", Kind: "started", TaskID: "E", Run: "1"}},
		{name: "finished", state: running, cmd: ReportClientTask{ClientID: "c", Kind: "finished", TaskID: "E", Run: "1"},
			want: []events.Payload{&events.ClientTaskFinished{TaskID: "E", Run: "1"}}},
		{name: "finished_not_running_is_nothing", state: foldClient(reg), cmd: ReportClientTask{ClientID: "c", Kind: "finished", TaskID: "E", Run: "1"}},
		{name: "errored_before_start", state: foldClient(reg), cmd: ReportClientTask{ClientID: "c", Kind: "errored", TaskID: "E", Run: "1", Exception: "digest mismatch"},
			want: []events.Payload{&events.ClientTaskErrored{TaskID: "E", Run: "1", Exception: "digest mismatch"}}},
		{name: "quarantined", state: foldClient(reg), cmd: ReportClientTask{ClientID: "c", Kind: "quarantined", TaskID: "E", Run: "1", SpecSeq: 3, Reason: "errored"},
			want: []events.Payload{&events.ClientTaskQuarantined{TaskID: "E", Run: "1", SpecSeq: 3, Reason: "errored"}}},
		{name: "quarantined_twice_is_nothing", state: foldClient(reg, &events.ClientTaskQuarantined{TaskID: "E", Run: "1", SpecSeq: 3}), cmd: ReportClientTask{ClientID: "c", Kind: "quarantined", TaskID: "E", Run: "1", SpecSeq: 3}},
		{name: "bad_kind", state: foldClient(reg), cmd: ReportClientTask{ClientID: "c", Kind: "exploded", TaskID: "E", Run: "1"}, wantKind: fault.KindInvalid},
		{name: "unknown_client", cmd: ReportClientTask{ClientID: "c", Kind: "started", TaskID: "E", Run: "1"}, wantKind: fault.KindNotFound},
		{name: "disconnected", state: foldAgent("c", reg), cmd: RecordPresence{ClientID: "c", Online: false},
			want: []events.Payload{&events.ClientDisconnected{}}},
		{name: "online_again", state: foldAgent("c", reg, &events.ClientDisconnected{}), cmd: RecordPresence{ClientID: "c", Online: true, Gap: 5},
			want: []events.Payload{&events.ClientReconnected{Gap: 5}}},
		{name: "still_online_is_nothing", state: foldAgent("c", reg), cmd: RecordPresence{ClientID: "c", Online: true}},
		{name: "never_seen_is_not_disconnected", state: foldClient(reg), cmd: RecordPresence{ClientID: "c", Online: false}},
		{name: "first_heard_of", state: foldClient(reg), cmd: RecordPresence{ClientID: "c", Online: true},
			want: []events.Payload{&events.ClientReconnected{}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.decide(tc.state)
			checkDecided(t, got, err, tc.want, tc.wantKind)
		})
	}
	q := foldClient(reg, &events.ClientTaskQuarantined{TaskID: "E", Run: "1", SpecSeq: 3})
	if !q.IsQuarantined(offer) || q.IsQuarantined(events.Offer{TaskID: "E", Run: "2", SpecSeq: 3}) || q.IsQuarantined(events.Offer{TaskID: "E", Run: "1", SpecSeq: 4}) {
		t.Fatal("a quarantine must cover its run and spec only: a restart or an update lifts it")
	}
}

// checkDecided checks what a decide function returned: an error of kind
// wantKind when one is wanted, else the events want.
func checkDecided(t *testing.T, got []events.Payload, err error, want []events.Payload, wantKind fault.Kind) {
	t.Helper()
	if wantKind != "" {
		if fault.KindOf(err) != wantKind {
			t.Fatalf("got %v, want %s", err, wantKind)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events:\n got %#v\nwant %#v", got, want)
	}
}
