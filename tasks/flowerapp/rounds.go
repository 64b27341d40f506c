package flowerapp

import (
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Round is what a ServerApp's log says about one round: the aggregated
// train and evaluate metrics (prefixed train_ and eval_) and how many
// results and failures each stage had. Values that are not numbers (a
// list, say) are kept as text in Raw.
type Round struct {
	Number  int
	Metrics map[string]float64
	Raw     map[string]string
}

// Rounds reads a ServerApp's log (Flower 1.2x's strategy log, as the
// SuperLink prints it and `flwr log` shows it) line by line and hands back
// each round once its log is complete: when the next round starts or the
// strategy finishes.
type Rounds struct {
	cur   *Round
	stage string
}

var (
	ansi        = regexp.MustCompile(`\x1b\[[0-9;]*m`)
	roundLine   = regexp.MustCompile(`\[ROUND (\d+)/\d+\]`)
	aggregated  = regexp.MustCompile(`aggregate_(train|evaluate): Received (\d+) results and (\d+) failures`)
	metricsLine = regexp.MustCompile(`Aggregated MetricRecord: (\{.*\})\s*$`)
)

// Feed reads one line; it returns the round the line completes, if any.
func (p *Rounds) Feed(line string) (Round, bool) {
	line = ansi.ReplaceAllString(line, "")
	if m := roundLine.FindStringSubmatch(line); m != nil {
		done, ok := p.Flush()
		n, _ := strconv.Atoi(m[1])
		p.cur = &Round{Number: n, Metrics: map[string]float64{}, Raw: map[string]string{}}
		p.stage = ""
		return done, ok
	}
	if strings.Contains(line, "Strategy execution finished") {
		return p.Flush()
	}
	if p.cur == nil {
		return Round{}, false
	}
	if m := aggregated.FindStringSubmatch(line); m != nil {
		p.stage = "train"
		if m[1] == "evaluate" {
			p.stage = "eval"
		}
		res, _ := strconv.ParseFloat(m[2], 64)
		fail, _ := strconv.ParseFloat(m[3], 64)
		p.cur.Metrics[p.stage+"_results"] = res
		p.cur.Metrics[p.stage+"_failures"] = fail
		return Round{}, false
	}
	if m := metricsLine.FindStringSubmatch(line); m != nil && p.stage != "" {
		for k, v := range pyDict(m[1]) {
			key := p.stage + "_" + k
			if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				p.cur.Metrics[key] = f
			} else {
				p.cur.Raw[key] = v
			}
		}
	}
	return Round{}, false
}

// Flush hands back the round being read, if any.
func (p *Rounds) Flush() (Round, bool) {
	if p.cur == nil {
		return Round{}, false
	}
	r := *p.cur
	p.cur = nil
	if len(r.Raw) == 0 {
		r.Raw = nil
	}
	return r, true
}

// pyDict reads the repr of a flat Python dict ({'a': 0.5, 'b': [1, 2]})
// into its keys and the text of each value.
func pyDict(s string) map[string]string {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	out := map[string]string{}
	depth, quote, start := 0, byte(0), 0
	var parts []string
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '[' || c == '(' || c == '{':
			depth++
		case c == ']' || c == ')' || c == '}':
			depth--
		case c == ',' && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	parts = append(parts, s[start:])
	for _, part := range parts {
		k, v, ok := strings.Cut(part, ":")
		if !ok {
			continue
		}
		k = strings.Trim(strings.TrimSpace(k), `'"`)
		if k == "" {
			continue
		}
		out[k] = strings.Trim(strings.TrimSpace(v), `'"`)
	}
	return out
}
