package commands_test

import (
	"context"
	"testing"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
)

// ExecuteEach stores what each command decides, pipelined, and decides
// again on the latest state a command whose aggregate another replica
// changed meanwhile: nothing is stored twice, nothing on a stale state.
func TestExecuteEachDecidesEachOnItsLatestState(t *testing.T) {
	ctx := context.Background()
	l := openLog(t)
	h, other := commands.NewHandler(l, commands.Config{}), commands.NewHandler(l, commands.Config{})
	for _, id := range []string{"a", "b", "c"} {
		if _, err := h.Execute(ctx, commands.ReportClientInfo{ClientID: id, Register: true}); err != nil {
			t.Fatal(err)
		}
	}
	offer := []events.Offer{{TaskID: "t", Run: "1"}}
	// Another replica records c's offers: h's cached state of c is behind.
	if _, err := other.Execute(ctx, commands.RecordOffers{ClientID: "c", Offers: offer}); err != nil {
		t.Fatal(err)
	}
	cmds := []commands.Command{
		commands.RecordOffers{ClientID: "a", Offers: offer},
		commands.RecordOffers{ClientID: "b", Offers: offer},
		commands.RecordOffers{ClientID: "c", Offers: offer}, // already so: nothing to store
		commands.RecordOffers{ClientID: "nobody", Offers: offer},
	}
	results, errs := h.ExecuteEach(ctx, cmds)
	for i, id := range []string{"a", "b"} {
		if errs[i] != nil || len(results[i].Events) != 1 || results[i].Events[0].Aggregate.ID != id {
			t.Fatalf("%s: %+v, %v", id, results[i], errs[i])
		}
	}
	if errs[2] != nil || len(results[2].Events) != 0 {
		t.Fatalf("c, whose offers another replica stored: %+v, %v; want nothing stored", results[2], errs[2])
	}
	if errs[3] == nil {
		t.Fatal("offers of an unknown client stored")
	}
	for _, id := range []string{"a", "b", "c"} {
		evs, err := l.Load(ctx, events.Client(id), 0)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.Type == events.ClientOffersChangedV1 {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%s has %d offers events, want 1", id, n)
		}
	}
	// The cache follows: the same offers again change nothing.
	results, errs = h.ExecuteEach(ctx, cmds[:2])
	if errs[0] != nil || errs[1] != nil || len(results[0].Events)+len(results[1].Events) != 0 {
		t.Fatalf("offers recorded twice: %+v %v", results, errs)
	}
}
