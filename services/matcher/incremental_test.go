package matcher_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/services/matcher"
	"github.com/nats-io/nkeys"
)

// fleet is a log, the command handler and a running matcher.
type fleet struct {
	t    *testing.T
	log  *eventlog.Log
	cmds *commands.Handler
	// barrier flips the barrier client's offers: once its offers event
	// is stored, so is every offers event the matcher queued before it
	// (one worker, clients in the order their events came).
	barrier bool
}

func newFleet(t *testing.T) *fleet {
	l := jstest.Log(t)
	f := &fleet{t: t, log: l, cmds: commands.NewHandler(l, commands.Config{})}
	f.do(commands.CreateTask{TaskID: "barrier", Host: "h", Port: 1, ServerCommand: []string{"true"}, SelectionCriteria: `"barrier" in sensors`})
	f.do(commands.StartTask{TaskID: "barrier"})
	f.report("zbarrier", 0)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	m := matcher.New(l, f.cmds, matcher.Config{Workers: 1, Batch: 3})
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return f
}

func (f *fleet) do(cmd commands.Command) uint64 {
	f.t.Helper()
	r, err := f.cmds.Execute(context.Background(), cmd)
	if err != nil {
		f.t.Fatalf("%T: %v", cmd, err)
	}
	return r.Seq
}

func (f *fleet) report(id string, data int64, sensors ...string) uint64 {
	f.t.Helper()
	if sensors == nil {
		sensors = []string{}
	}
	return f.do(commands.ReportClientInfo{ClientID: id, Register: true, ClientInfo: commands.ClientInfo{Sensors: &sensors, DataQnt: &data}})
}

// offersAfter runs the barrier and returns the offers events stored
// after seq, by client, the barrier's left out.
func (f *fleet) offersAfter(seq uint64) map[string]*events.ClientOffersChanged {
	f.t.Helper()
	f.barrier = !f.barrier
	var sensors []string
	if f.barrier {
		sensors = []string{"barrier"}
	}
	f.report("zbarrier", 0, sensors...)
	got := map[string]*events.ClientOffersChanged{}
	deadline := time.Now().Add(20 * time.Second)
	for {
		passed := false
		clear(got)
		err := f.log.Scan(context.Background(), f.log.TypeFilter(events.ClientOffersChangedV1), seq+1, func(e events.Envelope) error {
			if e.Aggregate.ID == "zbarrier" {
				passed = passed || len(e.Event.(*events.ClientOffersChanged).Offers) > 0 == f.barrier
				return nil
			}
			got[e.Aggregate.ID] = e.Event.(*events.ClientOffersChanged)
			return nil
		})
		if err != nil {
			f.t.Fatal(err)
		}
		if passed {
			return got
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the barrier's offers never came; offers so far %v", slices.Sorted(maps.Keys(got)))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// After each change, exactly the clients whose offers it changes get an
// offers event, with the decisions behind it: a start offers the task to
// the clients that match it and records nothing for the others; a report
// that changes nothing records nothing; an update of a running task's
// criterion reaches the clients that now match and those offered its old
// spec; a stop withdraws it from those offered it only.
func TestOnlyClientsWhoseOffersChangeGetOffers(t *testing.T) {
	f := newFleet(t)
	f.report("cam1", 50, "camera")
	f.report("cam2", 50, "camera")
	f.report("big", 500)
	f.report("plain", 1)
	f.do(commands.CreateTask{TaskID: "a", Host: "h", Port: 1, ServerCommand: []string{"true"}, SelectionCriteria: `"camera" in sensors`})
	f.do(commands.CreateTask{TaskID: "b", Host: "h", Port: 1, ServerCommand: []string{"true"}, SelectionCriteria: `data_qnt > 100`})
	wider := `data_qnt > 10`
	steps := []struct {
		name string
		do   func() uint64
		// offers of each client that must get an offers event (task
		// ids, the barrier's left out), and no other client.
		want map[string][]string
	}{
		{"start_offers_the_matching_clients_only", func() uint64 { return f.do(commands.StartTask{TaskID: "a"}) },
			map[string][]string{"cam1": {"a"}, "cam2": {"a"}}},
		{"another_start_leaves_the_others_alone", func() uint64 { return f.do(commands.StartTask{TaskID: "b"}) },
			map[string][]string{"big": {"b"}}},
		{"a_report_that_now_matches", func() uint64 { return f.report("plain", 1, "camera") },
			map[string][]string{"plain": {"a"}}},
		{"a_report_that_changes_nothing", func() uint64 { return f.report("cam1", 50, "camera") },
			map[string][]string{}},
		{"a_report_that_changes_attributes_but_not_offers", func() uint64 { return f.report("cam2", 60, "camera") },
			map[string][]string{}},
		{"an_update_reaches_new_matches_and_those_offered_it", func() uint64 {
			return f.do(commands.UpdateTask{TaskID: "b", SelectionCriteria: &wider})
		}, map[string][]string{"big": {"b"}, "cam1": {"a", "b"}, "cam2": {"a", "b"}}},
		{"a_stop_withdraws_from_those_offered_it", func() uint64 { return f.do(commands.StopTask{TaskID: "a"}) },
			map[string][]string{"cam1": {"b"}, "cam2": {"b"}, "plain": {}}},
		{"a_new_client_matching_nothing_gets_no_offers_event", func() uint64 { return f.report("late", 0, "camera") },
			map[string][]string{}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			f.t = t
			before, err := f.log.LastSeq(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			s.do()
			got := f.offersAfter(before)
			if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(s.want))) {
				t.Fatalf("offers events for %v, want for %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(s.want)))
			}
			for id, want := range s.want {
				var ids []string
				for _, o := range got[id].Offers {
					if o.TaskID != "barrier" {
						ids = append(ids, o.TaskID)
					}
				}
				if !slices.Equal(ids, want) && (len(ids) != 0 || len(want) != 0) {
					t.Errorf("%s offered %v, want %v", id, ids, want)
				}
				// A decision for every running task, offered exactly
				// when it matched.
				for _, d := range got[id].Decisions {
					if d.TaskID == "barrier" {
						continue
					}
					if d.Matched != slices.Contains(want, d.TaskID) {
						t.Errorf("%s: decision %+v, offers %v", id, d, want)
					}
				}
			}
		})
	}
}

// A matcher started on a log whose last events are none it reads (a key
// issued, here) reads the log to its end and offers what it finds to
// offer, without waiting for another event of its own.
func TestMatcherStartsOnALogEndingInOtherEvents(t *testing.T) {
	l := jstest.Log(t)
	cmds := commands.NewHandler(l, commands.Config{})
	ctx := context.Background()
	key, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := key.PublicKey()
	for _, cmd := range []commands.Command{
		commands.CreateTask{TaskID: "T", Host: "h", Port: 1, ServerCommand: []string{"true"}, SelectionCriteria: `"camera" in sensors`},
		commands.StartTask{TaskID: "T"},
		commands.ReportClientInfo{ClientID: "c1", Register: true, ClientInfo: commands.ClientInfo{Sensors: &[]string{"camera"}}},
		commands.IssueClientKey{ClientID: "c1", PublicKey: pub},
	} {
		if _, err := cmds.Execute(ctx, cmd); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	m := matcher.New(l, cmds, matcher.Config{})
	go func() { done <- m.Run(rctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		var offered bool
		err := l.Scan(ctx, l.TypeFilter(events.ClientOffersChangedV1), 1, func(e events.Envelope) error {
			offered = offered || len(e.Event.(*events.ClientOffersChanged).Offers) > 0
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, ready := m.Decisions("c1"); offered && ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("c1 not offered T 5 s after the matcher started (offered %v)", offered)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
