package taskd_test

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flmngr/flmngr/taskd"
)

// FuzzParse feeds arbitrary lines to Parse, the reader of the report
// protocol. It proves that Parse never panics and always answers a message
// of a known kind on the stream it was given; that every text it returns
// (text, trigger, arguments, metric names, raw values) is valid UTF-8, so
// that it can go into a JSON event as it is; that a line that is valid
// UTF-8 and not a report is kept whole as a log line; that what it returns
// is bounded by the line (a report's texts together are no longer than
// the line, a log line at most three times longer, as each invalid byte
// may become U+FFFD); that every metric is a finite number, which JSON can
// carry; and that String renders any message without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"type":"info","info":"Started"}`,
		`{"type":"info","info":"Finished"}`,
		`{"type":"print","message":"round 3 of 10"}`,
		`{"type":"error","exception":"Traceback (most recent call last): ..."}`,
		`{"type":"model","round":3,"acc":0.91,"loss":"0.25","f1":"[0.1, 0.2]"}`,
		`{"type":"model","round":"4","accuracy":1}`,
		`{"type":"model","round":2.0,"acc":"1e999","loss":1e999}`,
		`{"type":"model","round":1e999}`,
		`{"type":"model","round":-9.3e18,"acc":-1e-400}`,
		`{"type":"trigger","trigger_name":"retrain","trigger_arguments":"--epochs 3"}`,
		`{"type":"trigger","trigger_name":"","trigger_arguments":"x"}`,
		`{"type":"trigger","trigger_name":7,"trigger_arguments":{"a":[1,2]}}`,
		`{"type":"step","step":"run_status","detail":"finished:completed"}`,
		`{"type":"step","step":"","detail":"x"}`,
		`{"type":"step","detail":"x"}`,
		`{"type":"info","info":12345678901234567890123456789}`,
		`{"type":"print","message":null}`,
		`{"type":"print"}`,
		`{"type":"launch","info":"x"}`,
		`{"type":"","info":"x"}`,
		`{"type":3}`,
		`{"type":"info","info":"a\u0000b"}`,
		`{"type":"info","info":"\ud800\udc00\ud800"}`,
		`{"type":"info","info":"x"} trailing`,
		`{"type":"info","info":"x"`,
		`{"type":"info" "info":"x"}`,
		`{"type":"info","info":"x","type":"print","message":"y"}`,
		"  {\"type\":\"print\",\"message\":\"indented\"}\r\n",
		"{\"type\":\"info\",\"info\":\"x\xff\"}",
		`{"type":"print","message":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}`,
		`{"type":"print","message":"\"\\"}`,
		`{"type":"print","message":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":{"l":{"m":{"n":{"o":{"p":{}}}}}}}}}}}}}}}}}}`,
		`[]`, `{}`, `{`, `}`, `"x"`, `null`, `1e999`, `-0`, `NaN`,
		"", "\n", "\r\n", "plain log line", "a log line with a NUL \x00 inside",
		"\xff\xfe\xfd", "ok \xc3\x28 bad", "\xed\xa0\x80 surrogate", "\x00\x00\x00",
		strings.Repeat("\xff", 1000),
		strings.Repeat("[", 100000),
		`{"type":"info","info":` + strings.Repeat("[", 100000),
		`{"type":"model","round":1,"x":` + strings.Repeat("{\"a\":", 100000) + "1" + strings.Repeat("}", 100000) + "}",
		strings.Repeat("a", 1<<20),
		`{"type":"print","message":"` + strings.Repeat("é", 1<<19) + `"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		const stream = "stdout"
		m := taskd.Parse(stream, line)
		switch m.Kind {
		case taskd.KindInfo, taskd.KindPrint, taskd.KindError, taskd.KindModel, taskd.KindTrigger, taskd.KindStep, taskd.KindLog:
		default:
			t.Fatalf("Parse(%q) has kind %q, not one of the protocol's kinds", clip(line), m.Kind)
		}
		if m.Stream != stream {
			t.Fatalf("Parse(%q) has stream %q, want %q", clip(line), m.Stream, stream)
		}
		texts := map[string]string{"text": m.Text, "trigger": m.Trigger, "arguments": m.Arguments, "step": m.Step}
		for what, s := range texts {
			if !utf8.ValidString(s) {
				t.Fatalf("Parse(%q) returns a %s that is not valid UTF-8: %q", clip(line), what, clip([]byte(s)))
			}
		}
		out := len(m.Text) + len(m.Trigger) + len(m.Arguments) + len(m.Step)
		for k, v := range m.Raw {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("Parse(%q) returns a raw value %q: %q that is not valid UTF-8", clip(line), clip([]byte(k)), clip([]byte(v)))
			}
			out += len(k) + len(v)
		}
		for k, v := range m.Metrics {
			if !utf8.ValidString(k) {
				t.Fatalf("Parse(%q) returns a metric name %q that is not valid UTF-8", clip(line), clip([]byte(k)))
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("Parse(%q) returns metric %q = %v, which JSON cannot carry: the round's event cannot be encoded", clip(line), clip([]byte(k)), v)
			}
			if k != "accuracy" { // "accuracy" may be added as a copy of "acc"
				out += len(k)
			}
		}
		if m.Kind == taskd.KindLog {
			if m.Round != 0 || m.Metrics != nil || m.Raw != nil || m.Trigger != "" || m.Arguments != "" || m.Step != "" {
				t.Fatalf("Parse(%q) returns a log line with report fields: %+v", clip(line), m)
			}
			if utf8.Valid(line) && m.Text != string(bytes.TrimRight(line, "\r\n")) {
				t.Fatalf("Parse(%q) returns log text %q, want the line without its line ending", clip(line), clip([]byte(m.Text)))
			}
			if len(m.Text) > 3*len(line) {
				t.Fatalf("Parse of a %d-byte line returns a %d-byte log text, more than 3 bytes a byte", len(line), len(m.Text))
			}
		} else if out > len(line) {
			t.Fatalf("Parse(%q) returns %d bytes of text from a %d-byte line: %+v", clip(line), out, len(line), m)
		}
		if m.Kind == taskd.KindTrigger && m.Trigger == "" {
			t.Fatalf("Parse(%q) returns a trigger without a name", clip(line))
		}
		if m.Kind == taskd.KindStep && m.Step == "" {
			t.Fatalf("Parse(%q) returns a step without a name", clip(line))
		}
		if s := m.String(); !utf8.ValidString(s) {
			t.Fatalf("String of Parse(%q) is not valid UTF-8: %q", clip(line), clip([]byte(s)))
		}
	})
}

// clip keeps failure messages readable when the input is large.
func clip(b []byte) []byte {
	if len(b) > 200 {
		return append(b[:200:200], "…"...)
	}
	return b
}
