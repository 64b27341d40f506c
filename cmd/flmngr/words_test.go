package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestCommandWords(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       []string
		err        string
	}{
		{"empty", "  ", nil, ""},
		{"plain", "python3 server.py {workdir}", []string{"python3", "server.py", "{workdir}"}, ""},
		{"single_quotes", `sh -c 'echo hi'`, []string{"sh", "-c", "echo hi"}, ""},
		{"double_quotes", `sh -c "echo 'a b'"`, []string{"sh", "-c", "echo 'a b'"}, ""},
		{"backslash", `echo a\ b`, []string{"echo", "a b"}, ""},
		{"placeholders", "{flmngr} fl server --listen {host}:{port}", []string{"{flmngr}", "fl", "server", "--listen", "{host}:{port}"}, ""},
		{"quoted_dollar", `sh -c 'echo $HOME'`, []string{"sh", "-c", "echo $HOME"}, ""},
		{"quoted_glob", `ls '*.py'`, []string{"ls", "*.py"}, ""},
		{"variable", `echo $HOME`, nil, "$HOME is not expanded"},
		{"subst", "echo $(id)", nil, "command substitution"},
		{"backquote", "echo `id`", nil, "command substitution"},
		{"glob", "ls *.py", nil, "glob"},
		{"pipe", "a | b", nil, "a plain command only"},
		{"list", "a; b", nil, "one command only"},
		{"redirect", "a > f", nil, "a plain command only"},
		{"unterminated", `sh -c 'echo`, nil, "reached EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := commandWords(tc.line)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("%q: %v, want an error with %q", tc.line, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%q: %q %v, want %q", tc.line, got, err, tc.want)
			}
		})
	}
}

func TestTablesShowValuesAsPeopleRead(t *testing.T) {
	if got := metricsText(map[string]float64{"loss": 0.29431, "accuracy": 0.91805}); got != "accuracy 0.9181 loss 0.2943" {
		t.Fatalf("metrics %q", got)
	}
	if got := argvText([]string{"sh", "-c", "echo hi"}); got != `["sh", "-c", "echo hi"]` {
		t.Fatalf("argv %q", got)
	}
	if got := readsText(map[string]any{"sensors": []string{"gps"}, "data_qnt": 5}); got != `data_qnt=5 sensors=["gps"]` {
		t.Fatalf("reads %q", got)
	}
}
