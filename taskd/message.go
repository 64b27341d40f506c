package taskd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the type of a message from a task process.
type Kind string

// Message kinds: the report protocol's types, and Log for everything else.
const (
	KindInfo    Kind = "info"
	KindPrint   Kind = "print"
	KindError   Kind = "error"
	KindModel   Kind = "model"
	KindTrigger Kind = "trigger"
	KindStep    Kind = "step"
	KindLog     Kind = "log"
)

// Finished is the info text that ends a task successfully.
const Finished = "Finished"

// Message is one line from a task process.
type Message struct {
	Kind Kind
	// Stream is "stdout" or "stderr".
	Stream string
	// Text is the info text, the printed message, the error's exception
	// or the log line.
	Text string
	// Round and Metrics come with a model message; Raw keeps the values
	// that are not numbers (the original sent str(list) as "acc").
	Round   int
	Metrics map[string]float64
	Raw     map[string]string
	// Trigger and Arguments come with a trigger message.
	Trigger   string
	Arguments string
	// Step names what a step message reports; Text is its detail.
	Step string
}

// IsFinished reports whether m is the info message that ends a task.
func (m Message) IsFinished() bool { return m.Kind == KindInfo && m.Text == Finished }

// maxDepth bounds the nesting of a report line; deeper JSON is a log line.
const maxDepth = 16

// Parse turns one line (without its newline) into a message. A line that
// is not a JSON object of a known type is a log line; Parse never fails.
func Parse(stream string, line []byte) Message {
	line = bytes.TrimRight(line, "\r\n")
	logLine := Message{Kind: KindLog, Stream: stream, Text: strings.ToValidUTF8(string(line), "\uFFFD")}
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) < 2 || trimmed[0] != '{' || !utf8.Valid(trimmed) || tooDeep(trimmed) {
		return logLine
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return logLine
	}
	var typ string
	if json.Unmarshal(fields["type"], &typ) != nil {
		return logLine
	}
	m := Message{Kind: Kind(typ), Stream: stream}
	str := func(key string) (string, bool) {
		raw, ok := fields[key]
		if !ok {
			return "", false
		}
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s, true
		}
		return strings.TrimSpace(string(raw)), true // a number or other JSON, as text
	}
	var ok bool
	switch m.Kind {
	case KindInfo:
		m.Text, ok = str("info")
	case KindPrint:
		m.Text, ok = str("message")
	case KindError:
		m.Text, ok = str("exception")
	case KindTrigger:
		if m.Trigger, ok = str("trigger_name"); ok && m.Trigger != "" {
			m.Arguments, _ = str("trigger_arguments")
		} else {
			ok = false
		}
	case KindModel:
		ok = parseModel(&m, fields)
	case KindStep:
		if m.Step, ok = str("step"); ok && m.Step != "" {
			m.Text, _ = str("detail")
		} else {
			ok = false
		}
	}
	if !ok {
		return logLine
	}
	return m
}

// parseModel reads "round" and keeps every other field as a metric when it
// is a finite number (or a string holding one), as raw text otherwise. "acc" is
// also reported as "accuracy".
func parseModel(m *Message, fields map[string]json.RawMessage) bool {
	m.Metrics, m.Raw = map[string]float64{}, map[string]string{}
	for k, raw := range fields {
		if k == "type" {
			continue
		}
		var text string
		if json.Unmarshal(raw, &text) != nil {
			text = strings.TrimSpace(string(raw))
		}
		if k == "round" {
			r, err := strconv.Atoi(strings.TrimSpace(text))
			if err != nil {
				if f, ferr := strconv.ParseFloat(text, 64); ferr == nil && f == float64(int(f)) {
					r = int(f)
				} else {
					m.Raw["round"] = text
					continue
				}
			}
			m.Round = r
			continue
		}
		// NaN and infinities are no measurement (and no JSON): raw text.
		if f, err := strconv.ParseFloat(strings.TrimSpace(text), 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			m.Metrics[k] = f
		} else {
			m.Raw[k] = text
		}
	}
	if acc, ok := m.Metrics["acc"]; ok {
		if _, has := m.Metrics["accuracy"]; !has {
			m.Metrics["accuracy"] = acc
		}
	}
	if len(m.Metrics) == 0 {
		m.Metrics = nil
	}
	if len(m.Raw) == 0 {
		m.Raw = nil
	}
	return true
}

// tooDeep reports JSON nested deeper than maxDepth, without decoding it.
func tooDeep(b []byte) bool {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			depth++
			if depth > maxDepth {
				return true
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return false
}

// String renders a message for logs.
func (m Message) String() string {
	switch m.Kind {
	case KindModel:
		return fmt.Sprintf("model round %d %v %v", m.Round, m.Metrics, m.Raw)
	case KindTrigger:
		return fmt.Sprintf("trigger %s(%q)", m.Trigger, m.Arguments)
	case KindStep:
		return fmt.Sprintf("step %s %s", m.Step, m.Text)
	}
	return fmt.Sprintf("%s %s", m.Kind, m.Text)
}
