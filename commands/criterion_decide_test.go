package commands_test

import (
	"strings"
	"testing"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
)

func TestCriterionDecide(t *testing.T) {
	camera := events.ClientAttributes{Sensors: []string{"camera"}, DataQnt: 10}
	for _, tc := range []struct {
		name, src string
		matched   bool
		err       string // a part of the decision's error; "" for none
	}{
		{"selected", `"camera" in sensors`, true, ""},
		{"not_selected", `data_qnt > 100`, false, ""},
		{"empty_selects_everyone", ``, true, ""},
		{"evaluation_error", `attrs.x > 1`, false, "evaluate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := commands.CompileCriterion(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			d := c.Decide("c1", camera)
			if d.Matched != tc.matched || d.Criterion != tc.src || (tc.err == "") != (d.Error == "") || !strings.Contains(d.Error, tc.err) {
				t.Fatalf("Decide(%q) = %+v, want matched=%v error containing %q", tc.src, d, tc.matched, tc.err)
			}
		})
	}
	t.Run("not_compiled_selects_no_one", func(t *testing.T) {
		var c *commands.Criterion
		if d := c.Decide("c1", camera); d.Matched || d.Error == "" {
			t.Fatalf("a criterion that does not compile decided %+v", d)
		}
	})
}
