package commands

import (
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
)

// A criterion is operator input evaluated for every client, so its cost
// is bounded by construction:
//
//   - values grow at most linearly with the criterion's size: let (which
//     lets a value be reused, doubling it at each step) and the builtins
//     that build large or nested values from small ones (repeat, replace,
//     join, map, reduce, toJSON, …) are refused at compile time;
//   - expr's memory budget bounds ranges and literals;
//   - every iteration of a loop (any, all, filter, count, …) is metered: an
//     evaluation stops with an error after criterionMaxSteps iterations or
//     criterionTimeout, whichever comes first.
const (
	criterionMaxSteps = 100_000
	criterionTimeout  = 250 * time.Millisecond
)

// criterionBuiltins are the builtins a criterion may call.
var criterionBuiltins = map[string]bool{
	"all": true, "any": true, "none": true, "one": true, "filter": true, "count": true,
	"find": true, "findIndex": true, "findLast": true, "findLastIndex": true,
	"len": true, "type": true, "abs": true, "ceil": true, "floor": true, "round": true,
	"int": true, "float": true, "string": true, "trim": true, "trimPrefix": true, "trimSuffix": true,
	"upper": true, "lower": true, "indexOf": true, "lastIndexOf": true, "hasPrefix": true, "hasSuffix": true,
	"max": true, "min": true, "sum": true, "mean": true, "median": true,
	"first": true, "last": true, "get": true, "keys": true, "values": true,
}

// stepFunc is called, with the environment, at the start of every loop
// iteration. Its name cannot be written in a criterion.
const stepFunc = "$flmngr_step"

// meter counts the loop iterations of one evaluation.
type meter struct {
	steps    int
	deadline time.Time
}

func newMeter() *meter { return &meter{deadline: time.Now().Add(criterionTimeout)} }

func (m *meter) step() error {
	m.steps++
	if m.steps > criterionMaxSteps {
		return fmt.Errorf("selection criterion stopped after %d loop iterations", criterionMaxSteps)
	}
	if time.Now().After(m.deadline) {
		return fmt.Errorf("selection criterion stopped after running for %v", criterionTimeout)
	}
	return nil
}

func stepOption() expr.Option {
	return expr.Function(stepFunc, func(params ...any) (any, error) {
		if len(params) == 1 {
			if env, ok := params[0].(CriterionEnv); ok && env.meter != nil {
				return true, env.meter.step()
			}
		}
		return true, nil
	})
}

// guard refuses what a criterion may not use and meters its loops; err
// keeps the first refusal (a visitor cannot return one).
type guard struct {
	err   error
	reads map[string]bool // the client attributes the criterion reads
}

func (g *guard) refuse(format string, args ...any) {
	if g.err == nil {
		g.err = fmt.Errorf(format, args...)
	}
}

func (g *guard) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.VariableDeclaratorNode:
		g.refuse("let is not allowed in a selection criterion")
	case *ast.BuiltinNode:
		if !criterionBuiltins[n.Name] {
			g.refuse("%s() is not allowed in a selection criterion", n.Name)
		}
	case *ast.IdentifierNode:
		if n.Value == stepFunc {
			g.refuse("unknown name %s", n.Value)
		}
		if criterionNames[n.Value] {
			g.read(n.Value)
		}
	case *ast.MemberNode:
		if id, ok := n.Node.(*ast.IdentifierNode); ok && id.Value == "attrs" {
			if prop, ok := n.Property.(*ast.StringNode); ok {
				g.read("attrs." + prop.Value)
			}
		}
	case *ast.PredicateNode:
		// The children were visited already: the call added here is
		// never seen by this visitor.
		step := &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: stepFunc},
			Arguments: []ast.Node{&ast.IdentifierNode{Value: "$env"}},
		}
		n.Node = &ast.SequenceNode{Nodes: []ast.Node{step, n.Node}}
	}
}

// criterionNames are the names a criterion reads client attributes by.
var criterionNames = map[string]bool{"sensors": true, "data_qnt": true, "avg_acc_contrib": true,
	"avg_disconnection_per_round": true, "user_id": true, "attrs": true}

func (g *guard) read(name string) {
	if g.reads == nil {
		g.reads = map[string]bool{}
	}
	g.reads[name] = true
}
