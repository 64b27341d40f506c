package commands

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// MaxCriterionLength bounds the source of a selection criterion.
const MaxCriterionLength = 4096

// criterionMaxNodes bounds the size of a compiled criterion, and with it the
// cost of evaluating one.
const criterionMaxNodes = 512

// CriterionEnv is what a selection criterion sees: the client's attributes
// under the original record's names, and its extra attributes under attrs.
type CriterionEnv struct {
	Sensors                  []string       `expr:"sensors"`
	DataQnt                  int64          `expr:"data_qnt"`
	AvgAccContrib            *float64       `expr:"avg_acc_contrib"`
	AvgDisconnectionPerRound *float64       `expr:"avg_disconnection_per_round"`
	UserID                   string         `expr:"user_id"`
	Attrs                    map[string]any `expr:"attrs"`

	meter *meter
}

// Criterion is a compiled selection criterion. The zero value (an empty
// source) matches every client, as in the original.
type Criterion struct {
	Source  string
	program *vm.Program
	reads   []string // the attributes it reads, sorted
}

// CompileCriterion compiles src as a boolean expr program over
// CriterionEnv. Any error is an *fault.Error naming selection_criteria.
func CompileCriterion(src string) (*Criterion, error) {
	if strings.TrimSpace(src) == "" {
		return &Criterion{Source: src}, nil
	}
	if len(src) > MaxCriterionLength {
		return nil, fault.Invalid("selection_criteria", "selection criterion is longer than %d bytes", MaxCriterionLength)
	}
	g := &guard{}
	p, err := expr.Compile(src, expr.Env(CriterionEnv{}), expr.AsBool(), expr.MaxNodes(criterionMaxNodes),
		stepOption(), expr.Patch(g))
	if g.err != nil {
		err = g.err
	}
	if err != nil {
		return nil, &fault.Error{
			Kind:    fault.KindInvalid,
			Field:   "selection_criteria",
			Message: "invalid selection criterion: " + oneLine(err.Error()),
		}
	}
	reads := slices.Sorted(maps.Keys(g.reads))
	if slices.ContainsFunc(reads, func(r string) bool { return strings.HasPrefix(r, "attrs.") }) {
		// attrs.region says more than attrs.
		reads = slices.DeleteFunc(reads, func(r string) bool { return r == "attrs" })
	}
	return &Criterion{Source: src, program: p, reads: reads}, nil
}

// Reads returns the values of the attributes the criterion reads, by the
// names it reads them with (attrs.region for an extra attribute): what
// explains why a client was or was not selected.
func (c *Criterion) Reads(clientID string, a events.ClientAttributes) map[string]any {
	if len(c.reads) == 0 {
		return nil
	}
	out := make(map[string]any, len(c.reads))
	for _, name := range c.reads {
		switch name {
		case "sensors":
			out[name] = a.Sensors
		case "data_qnt":
			out[name] = a.DataQnt
		case "avg_acc_contrib":
			out[name] = a.AvgAccContrib
		case "avg_disconnection_per_round":
			out[name] = a.AvgDisconnectionPerRound
		case "user_id":
			out[name] = clientID
		case "attrs":
			out[name] = a.Extra
		default:
			out[name] = a.Extra[strings.TrimPrefix(name, "attrs.")]
		}
	}
	return out
}

// Decide evaluates the criterion for one client: the decision the
// matcher offers by and every view shows. A nil criterion (one that
// does not compile) selects no one.
func (c *Criterion) Decide(clientID string, a events.ClientAttributes) events.Decision {
	if c == nil {
		return events.Decision{Error: "criterion does not compile"}
	}
	d := events.Decision{Criterion: c.Source}
	ok, err := c.Match(clientID, a)
	if err != nil {
		d.Error = err.Error()
	} else {
		d.Matched = ok
	}
	return d
}

// Match evaluates the criterion for one client.
func (c *Criterion) Match(clientID string, a events.ClientAttributes) (bool, error) {
	if c.program == nil {
		return true, nil
	}
	env := CriterionEnv{
		Sensors:                  a.Sensors,
		DataQnt:                  a.DataQnt,
		AvgAccContrib:            a.AvgAccContrib,
		AvgDisconnectionPerRound: a.AvgDisconnectionPerRound,
		UserID:                   clientID,
		Attrs:                    a.Extra,
		meter:                    newMeter(),
	}
	if env.Attrs == nil {
		env.Attrs = map[string]any{}
	}
	out, err := expr.Run(c.program, env)
	if err != nil {
		return false, fmt.Errorf("evaluate %q: %s", c.Source, oneLine(err.Error()))
	}
	ok, _ := out.(bool)
	return ok, nil
}

// oneLine keeps the first line of expr's multi-line error messages (the
// rest is a caret drawing of the source).
func oneLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
