package matcher

import (
	"reflect"
	"slices"
	"testing"

	"github.com/flmngr/flmngr/events"
)

// history folds events into a matcher without a log: seq numbers follow
// the order given, as a stream's would.
type history struct {
	m   *Matcher
	seq uint64
}

func newHistory(ready bool) *history {
	h := &history{m: New(nil, nil, Config{})}
	h.m.ready = ready
	return h
}

func (h *history) task(id string, p events.Payload) *history { return h.add(events.Task(id), p) }

func (h *history) client(id string, p events.Payload) *history {
	return h.add(events.Client(id), p)
}

func (h *history) add(agg events.Aggregate, p events.Payload) *history {
	h.seq++
	h.m.apply(events.Envelope{Type: p.EventType(), Aggregate: agg, Seq: h.seq, Event: p})
	return h
}

// started registers a task with criterion crit and starts run 1 of it.
func (h *history) started(id, crit string) *history {
	return h.task(id, &events.TaskCreated{TaskSpec: events.TaskSpec{SelectionCriteria: crit}}).
		task(id, &events.TaskStartRequested{Run: "1"})
}

func withSensors(data int64, sensors ...string) *events.ClientRegistered {
	return &events.ClientRegistered{Attributes: events.ClientAttributes{Sensors: sensors, DataQnt: data}}
}

func offered(offers []events.Offer) []string {
	ids := []string{}
	for _, o := range offers {
		ids = append(ids, o.TaskID)
	}
	return ids
}

// The matcher offers a client exactly the active tasks whose criterion it
// matches, in task creation order, and records a decision for every
// active task, with the reason when a criterion cannot be evaluated.
func TestDesiredOffersAndDecisions(t *testing.T) {
	const camera = `"camera" in sensors`
	tests := []struct {
		name      string
		history   func(h *history) *history
		offers    []string
		decisions []events.Decision
	}{
		{
			name:      "no_tasks_offers_nothing",
			history:   func(h *history) *history { return h },
			offers:    []string{},
			decisions: []events.Decision{},
		},
		{
			name: "registered_but_not_started_is_not_offered",
			history: func(h *history) *history {
				return h.task("a", &events.TaskCreated{TaskSpec: events.TaskSpec{SelectionCriteria: camera}})
			},
			offers:    []string{},
			decisions: []events.Decision{},
		},
		{
			name:    "started_and_matching_is_offered",
			history: func(h *history) *history { return h.started("a", camera) },
			offers:  []string{"a"},
			decisions: []events.Decision{
				{TaskID: "a", Criterion: camera, AttributesSeq: 1, Matched: true},
			},
		},
		{
			name: "running_is_still_offered",
			history: func(h *history) *history {
				return h.started("a", camera).task("a", &events.TaskServerStarted{Run: "1"})
			},
			offers: []string{"a"},
			decisions: []events.Decision{
				{TaskID: "a", Criterion: camera, AttributesSeq: 1, Matched: true},
			},
		},
		{
			name:    "not_matching_is_decided_but_not_offered",
			history: func(h *history) *history { return h.started("a", `data_qnt > 100`) },
			offers:  []string{},
			decisions: []events.Decision{
				{TaskID: "a", Criterion: `data_qnt > 100`, AttributesSeq: 1, Matched: false},
			},
		},
		{
			name:    "empty_criterion_matches_everyone",
			history: func(h *history) *history { return h.started("a", "") },
			offers:  []string{"a"},
			decisions: []events.Decision{
				{TaskID: "a", Criterion: "", AttributesSeq: 1, Matched: true},
			},
		},
		{
			name:    "criterion_that_does_not_compile_is_an_error_not_an_offer",
			history: func(h *history) *history { return h.started("a", `sensors +`) },
			offers:  []string{},
			decisions: []events.Decision{
				{TaskID: "a", Criterion: `sensors +`, AttributesSeq: 1, Error: "criterion does not compile"},
			},
		},
		{
			name: "ended_runs_are_not_offered",
			history: func(h *history) *history {
				h.started("stopping", camera).task("stopping", &events.TaskStopRequested{Run: "1"})
				h.started("stopped", camera).task("stopped", &events.TaskStopRequested{Run: "1"}).task("stopped", &events.TaskStopped{Run: "1"})
				h.started("finished", camera).task("finished", &events.TaskFinished{Run: "1"})
				h.started("errored", camera).task("errored", &events.TaskErrored{Run: "1"})
				h.started("interrupted", camera).task("interrupted", &events.TaskInterrupted{Run: "1"})
				return h.started("deleted", camera).task("deleted", &events.TaskStopped{Run: "1"}).task("deleted", &events.TaskDeleted{})
			},
			offers:    []string{},
			decisions: []events.Decision{},
		},
		{
			name: "offers_follow_creation_order_not_names",
			history: func(h *history) *history {
				h.task("z", &events.TaskCreated{TaskSpec: events.TaskSpec{SelectionCriteria: camera}})
				h.task("a", &events.TaskCreated{TaskSpec: events.TaskSpec{SelectionCriteria: camera}})
				h.task("m", &events.TaskCreated{TaskSpec: events.TaskSpec{SelectionCriteria: camera}})
				// Started in another order than created.
				return h.task("m", &events.TaskStartRequested{Run: "1"}).task("a", &events.TaskStartRequested{Run: "1"}).task("z", &events.TaskStartRequested{Run: "1"})
			},
			offers: []string{"z", "a", "m"},
			decisions: []events.Decision{
				{TaskID: "z", Criterion: camera, AttributesSeq: 1, Matched: true},
				{TaskID: "a", Criterion: camera, AttributesSeq: 1, Matched: true},
				{TaskID: "m", Criterion: camera, AttributesSeq: 1, Matched: true},
			},
		},
		{
			name: "an_update_recompiles_the_criterion",
			history: func(h *history) *history {
				return h.started("a", camera).task("a", &events.TaskUpdated{TaskSpec: events.TaskSpec{SelectionCriteria: `data_qnt > 100`}})
			},
			offers: []string{},
			decisions: []events.Decision{
				{TaskID: "a", Criterion: `data_qnt > 100`, AttributesSeq: 1, Matched: false},
			},
		},
		{
			name: "a_deleted_id_registered_again_starts_idle",
			history: func(h *history) *history {
				h.started("a", camera).task("a", &events.TaskStopped{Run: "1"}).task("a", &events.TaskDeleted{})
				return h.task("a", &events.TaskCreated{TaskSpec: events.TaskSpec{SelectionCriteria: camera}})
			},
			offers:    []string{},
			decisions: []events.Decision{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(false)
			h.client("c", withSensors(50, "camera"))
			tc.history(h)
			offers, decisions := h.m.desired(h.m.clients["c"])
			if got := offered(offers); !slices.Equal(got, tc.offers) {
				t.Errorf("offers %v, want %v", got, tc.offers)
			}
			if !reflect.DeepEqual(decisions, tc.decisions) {
				t.Errorf("decisions\n got %+v\nwant %+v", decisions, tc.decisions)
			}
		})
	}
}

// A criterion that fails while evaluated for this client is a decision
// with the evaluation's error, not an offer.
func TestDesiredRecordsAnEvaluationError(t *testing.T) {
	h := newHistory(false)
	h.client("c", withSensors(50, "camera")) // no avg_acc_contrib
	h.started("a", `avg_acc_contrib > 0.5`)
	offers, decisions := h.m.desired(h.m.clients["c"])
	if len(offers) != 0 {
		t.Fatalf("offered %v on an evaluation error", offered(offers))
	}
	if len(decisions) != 1 || decisions[0].Matched || decisions[0].Error == "" {
		t.Fatalf("decisions %+v, want one unmatched with an error", decisions)
	}
}

// Decisions name the attributes they were taken on: a report moves the
// sequence and the decision with it.
func TestDesiredFollowsTheLatestAttributes(t *testing.T) {
	h := newHistory(false)
	h.client("c", withSensors(50))
	h.started("a", `"camera" in sensors`)
	if offers, _ := h.m.desired(h.m.clients["c"]); len(offers) != 0 {
		t.Fatalf("offered %v before the camera", offered(offers))
	}
	h.client("c", &events.ClientInfoReported{Attributes: events.ClientAttributes{Sensors: []string{"camera"}}})
	offers, decisions := h.m.desired(h.m.clients["c"])
	if !slices.Equal(offered(offers), []string{"a"}) {
		t.Fatalf("offers %v after the camera, want [a]", offered(offers))
	}
	if decisions[0].AttributesSeq != h.seq {
		t.Fatalf("decision on attributes %d, want %d (the report)", decisions[0].AttributesSeq, h.seq)
	}
}

// An offer carries what the client needs to fetch and run the run: the
// files it lists (a listed file never uploaded by name only), every file
// when it lists none, and never the task's credentials.
func TestOfferCarriesTheRun(t *testing.T) {
	args := "--epochs 2"
	fa := events.FileRef{Name: "client.py", Size: 3, SHA256: "aa"}
	fb := events.FileRef{Name: "task.py", Size: 4, SHA256: "bb"}
	spec := events.TaskSpec{Host: "10.0.0.1", Port: 8080, Username: "u", PasswordHash: "secret",
		Tags: []string{"t"}, ClientArguments: &args, ClientCommand: []string{"python3", "client.py"}}
	tests := []struct {
		name  string
		paths []string
		files []events.FileRef
	}{
		{name: "no_paths_all_files", paths: nil, files: []events.FileRef{fa, fb}},
		{name: "listed_files_only", paths: []string{"task.py"}, files: []events.FileRef{fb}},
		{name: "listed_but_missing_by_name", paths: []string{"client.py", "data.csv"}, files: []events.FileRef{fa, {Name: "data.csv"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := spec
			s.FilesPaths = tc.paths
			h := newHistory(false)
			h.client("c", withSensors(1))
			h.task("a", &events.TaskCreated{TaskSpec: s})
			specSeq := h.seq
			h.task("a", &events.TaskFilesUploaded{Files: []events.FileRef{fb, fa}})
			h.task("a", &events.TaskStartRequested{Run: "7"})
			offers, _ := h.m.desired(h.m.clients["c"])
			want := events.Offer{TaskID: "a", Run: "7", SpecSeq: specSeq, Host: "10.0.0.1", Port: 8080, Tags: []string{"t"},
				ClientArguments: &args, ClientCommand: []string{"python3", "client.py"}, Files: tc.files}
			if len(offers) != 1 || !reflect.DeepEqual(offers[0], want) {
				t.Fatalf("offers\n got %+v\nwant [%+v]", offers, want)
			}
		})
	}
}

// Once following the log, the matcher queues for an update exactly the
// clients whose offers an event may change.
func TestApplyMarksTheClientsAnEventConcerns(t *testing.T) {
	const camera = `"camera" in sensors`
	tests := []struct {
		name  string
		event func(h *history)
		want  []string
	}{
		{name: "a_registration_marks_the_client", event: func(h *history) { h.client("new", withSensors(1)) }, want: []string{"new"}},
		{name: "a_report_marks_the_client", event: func(h *history) {
			h.client("plain", &events.ClientInfoReported{Attributes: events.ClientAttributes{Sensors: []string{"camera"}}})
		}, want: []string{"plain"}},
		{name: "a_start_marks_the_matching_clients", event: func(h *history) {
			h.task("idle", &events.TaskStartRequested{Run: "1"})
		}, want: []string{"cam"}},
		{name: "a_stop_marks_the_clients_offered_it", event: func(h *history) {
			h.task("on", &events.TaskStopRequested{Run: "1"})
		}, want: []string{"cam", "plain"}},
		{name: "an_update_of_an_idle_task_marks_no_one", event: func(h *history) {
			h.task("idle", &events.TaskUpdated{TaskSpec: events.TaskSpec{SelectionCriteria: ""}})
		}, want: []string{}},
		{name: "an_offers_change_marks_no_one", event: func(h *history) {
			h.client("cam", &events.ClientOffersChanged{})
		}, want: []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHistory(false)
			h.client("cam", withSensors(1, "camera")).client("plain", withSensors(1))
			h.task("idle", &events.TaskCreated{TaskSpec: events.TaskSpec{SelectionCriteria: camera}})
			h.started("on", `data_qnt > 0`)
			// Both clients were offered "on" (as the log would say).
			on := []events.Offer{{TaskID: "on", Run: "1"}}
			h.client("cam", &events.ClientOffersChanged{Offers: on}).client("plain", &events.ClientOffersChanged{Offers: on})
			h.m.ready = true
			tc.event(h)
			got := slices.Clone(h.m.queue)
			slices.Sort(got)
			if got == nil {
				got = []string{}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("marked %v, want %v", got, tc.want)
			}
		})
	}
}

// A withdrawn offer whose run finished is named as finished, so the
// client does not take it for a failure; one withdrawn for any other
// reason is not.
func TestFinishedWithdrawals(t *testing.T) {
	h := newHistory(false)
	h.client("c", withSensors(1))
	h.started("done", "").started("stopped", "").started("still", "")
	h.client("c", &events.ClientOffersChanged{Offers: []events.Offer{{TaskID: "done", Run: "1"}, {TaskID: "stopped", Run: "1"}, {TaskID: "still", Run: "1"}}})
	h.task("done", &events.TaskFinished{Run: "1"})
	h.task("stopped", &events.TaskStopRequested{Run: "1"}).task("stopped", &events.TaskStopped{Run: "1"})
	c := h.m.clients["c"]
	next, _ := h.m.desired(c)
	if got := offered(next); !slices.Equal(got, []string{"still"}) {
		t.Fatalf("next offers %v, want [still]", got)
	}
	if got := h.m.finishedWithdrawals(c, next); !slices.Equal(got, []string{"done"}) {
		t.Fatalf("finished %v, want [done]", got)
	}
}

// A Flower App's run is offered only once its SuperLink's CA certificate
// is issued, and with it: the SuperNodes need it to connect. Marked
// clients see the issue as a change.
func TestFlowerAppIsOfferedWithItsCA(t *testing.T) {
	h := newHistory(true).client("c", withSensors(1, "camera")).
		task("f", &events.TaskCreated{TaskSpec: events.TaskSpec{SelectionCriteria: `"camera" in sensors`, Kind: "flower-app"}}).
		task("f", &events.TaskStartRequested{Run: "1"})
	if offers, _ := h.m.desired(h.m.clients["c"]); len(offers) != 0 {
		t.Fatalf("a Flower App run without its CA is offered: %+v", offers)
	}
	delete(h.m.dirty, "c")
	h.task("f", &events.TaskSuperLinkCAIssued{Run: "1", Certificate: "CA"})
	if _, marked := h.m.dirty["c"]; !marked {
		t.Fatal("the CA's issue does not mark the matching client")
	}
	offers, _ := h.m.desired(h.m.clients["c"])
	if len(offers) != 1 || offers[0].SuperLinkCA != "CA" {
		t.Fatalf("offers after the CA: %+v", offers)
	}
}
