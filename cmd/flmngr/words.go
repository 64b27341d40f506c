package main

import (
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// commandWords splits a command line into its argv with the shell's word
// rules (quotes and backslashes), as an operator types it: sh -c 'echo hi'
// is ["sh", "-c", "echo hi"]. Nothing is expanded: the command runs
// without a shell, so $VAR, `…`, $(…), globs, pipes and redirections are
// refused rather than passed on literally; the task's placeholders
// ({host}, {port}, …) are the way to put values in.
func commandWords(line string) ([]string, error) {
	if strings.TrimSpace(line) == "" {
		return nil, nil
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(line), "")
	if err != nil {
		return nil, fmt.Errorf("%v", strings.TrimPrefix(err.Error(), ":"))
	}
	if len(f.Stmts) != 1 {
		return nil, fmt.Errorf("one command only: ';', '&', '&&', '||' and newlines need a shell (sh -c '…')")
	}
	st := f.Stmts[0]
	call, ok := st.Cmd.(*syntax.CallExpr)
	if !ok || st.Negated || st.Background || st.Coprocess || len(st.Redirs) > 0 || len(call.Assigns) > 0 {
		return nil, fmt.Errorf("a plain command only: pipes, redirections and assignments need a shell (sh -c '…')")
	}
	var argv []string
	for _, w := range call.Args {
		if err := literalOnly(w); err != nil {
			return nil, err
		}
		fields, err := expand.Fields(&expand.Config{}, w)
		if err != nil {
			return nil, err
		}
		argv = append(argv, strings.Join(fields, ""))
	}
	return argv, nil
}

// literalOnly refuses the parts of a word a shell would expand.
func literalOnly(w *syntax.Word) error {
	var bad string
	syntax.Walk(w, func(n syntax.Node) bool {
		switch n := n.(type) {
		case *syntax.ParamExp:
			bad = "$" + n.Param.Value
		case *syntax.CmdSubst:
			bad = "command substitution"
		case *syntax.ArithmExp:
			bad = "arithmetic expansion"
		case *syntax.ProcSubst:
			bad = "process substitution"
		case *syntax.ExtGlob:
			bad = "glob"
		case *syntax.Lit:
			if strings.ContainsAny(n.Value, "*?[") && !quoted(w, n) {
				bad = "glob " + n.Value
			}
		}
		return bad == ""
	})
	if bad != "" {
		return fmt.Errorf("%s is not expanded (the command runs without a shell): quote it, or use a placeholder such as {host}", bad)
	}
	return nil
}

// quoted reports whether lit sits inside quotes of w.
func quoted(w *syntax.Word, lit *syntax.Lit) bool {
	for _, p := range w.Parts {
		switch p := p.(type) {
		case *syntax.SglQuoted:
			if p.Pos().Offset() <= lit.Pos().Offset() && lit.End().Offset() <= p.End().Offset() {
				return true
			}
		case *syntax.DblQuoted:
			if p.Pos().Offset() <= lit.Pos().Offset() && lit.End().Offset() <= p.End().Offset() {
				return true
			}
		}
	}
	return false
}
