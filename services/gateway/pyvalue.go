package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// JSON values as Python's json.loads gives them, printed as Python prints
// them: the original's 400 texts are Python's str(ValidationError), which
// shows the request's values and the schema's with repr() and
// pprint.pformat().
//
// A value is nil (None), bool, string, pyInt (int), float64 (float),
// []any (list) or *pyDict (dict).

// pyInt is a Python int, held as its decimal digits (JSON integers have
// no size limit, nor do Python's).
type pyInt string

// pyDict is a Python dict decoded from a JSON object: its keys in the
// order they came, a repeated key keeping its first place and its last
// value, as json.loads does.
type pyDict struct {
	keys []string
	vals map[string]any
}

func (d *pyDict) get(k string) (any, bool) {
	v, ok := d.vals[k]
	return v, ok
}

// index is the place of k among d's keys, or -1.
func (d *pyDict) index(k string) int {
	for i, key := range d.keys {
		if key == k {
			return i
		}
	}
	return -1
}

// maxPyDepth bounds nesting as encoding/json does.
const maxPyDepth = 10000

// decodePy decodes one JSON value as Python's json.loads would.
func decodePy(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodePyValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the value")
	}
	return v, nil
}

func decodePyValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxPyDepth {
		return nil, errors.New("invalid JSON: nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			d := &pyDict{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodePyValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				if _, seen := d.vals[k]; !seen {
					d.keys = append(d.keys, k)
				}
				d.vals[k] = v
			}
			_, err := dec.Token()
			return d, err
		case '[':
			l := []any{}
			for dec.More() {
				v, err := decodePyValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			_, err := dec.Token()
			return l, err
		}
		return nil, errors.New("invalid JSON")
	case json.Number:
		s := string(t)
		if strings.ContainsAny(s, ".eE") {
			// float(): out of range is inf, as in Python.
			f, err := strconv.ParseFloat(s, 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return nil, err
			}
			return f, nil
		}
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return nil, errors.New("invalid JSON number " + s)
		}
		return pyInt(n.String()), nil
	default: // nil, bool, string
		return t, nil
	}
}

// plainJSON is v as the JSON Schema library takes it: maps, slices,
// json.Number for ints and float64 for floats, so that numbers compare as
// Python's do (a float is its binary value, an int is exact).
func plainJSON(v any) any {
	switch x := v.(type) {
	case *pyDict:
		m := make(map[string]any, len(x.keys))
		for _, k := range x.keys {
			m[k] = plainJSON(x.vals[k])
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = plainJSON(e)
		}
		return l
	case pyInt:
		return json.Number(x)
	}
	return v
}

// pyIsType is jsonschema's draft-07 type check.
func pyIsType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(*pyDict)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	case "number":
		switch v.(type) {
		case pyInt, float64:
			return true
		}
	case "integer":
		switch x := v.(type) {
		case pyInt:
			return true
		case float64:
			return !math.IsInf(x, 0) && x == math.Trunc(x)
		}
	}
	return false
}

// pyNumber is v as a number, for comparisons with schema values such as
// minLength's (1 == 1.0 in Python).
func pyNumber(v any) (*big.Float, bool) {
	switch x := v.(type) {
	case pyInt:
		f, ok := new(big.Float).SetString(string(x))
		return f, ok
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, false
		}
		return big.NewFloat(x), true
	}
	return nil, false
}

// pyEquals says whether v is the number n.
func pyEquals(v any, n int64) bool {
	f, ok := pyNumber(v)
	return ok && f.Cmp(big.NewFloat(float64(n))) == 0
}

// ---- repr()

func pyRepr(v any) string {
	var b strings.Builder
	writeRepr(&b, v)
	return b.String()
}

func writeRepr(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if x {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case string:
		writeStrRepr(b, x)
	case pyInt:
		b.WriteString(string(x))
	case float64:
		b.WriteString(pyFloatRepr(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, e)
		}
		b.WriteByte(']')
	case *pyDict:
		b.WriteByte('{')
		for i, k := range x.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeStrRepr(b, k)
			b.WriteString(": ")
			writeRepr(b, x.vals[k])
		}
		b.WriteByte('}')
	default:
		panic("gateway: not a Python value")
	}
}

// pyQuote is the quote repr() puts around s: single, unless s has a
// single quote and no double one.
func pyQuote(s string) byte {
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		return '"'
	}
	return '\''
}

// writeStrRepr writes s as Python's repr(str).
func writeStrRepr(b *strings.Builder, s string) {
	q := pyQuote(s)
	b.WriteByte(q)
	for _, r := range s {
		writeReprRune(b, r, q)
	}
	b.WriteByte(q)
}

const lowerhex = "0123456789abcdef"

func writeReprRune(b *strings.Builder, r rune, q byte) {
	switch {
	case r == rune(q) || r == '\\':
		b.WriteByte('\\')
		b.WriteRune(r)
	case r == '\t':
		b.WriteString(`\t`)
	case r == '\n':
		b.WriteString(`\n`)
	case r == '\r':
		b.WriteString(`\r`)
	case r < ' ' || r == 0x7f:
		b.WriteString(`\x`)
		b.WriteByte(lowerhex[r>>4])
		b.WriteByte(lowerhex[r&0xf])
	case r < 0x7f:
		b.WriteRune(r)
	case unicode.IsPrint(r): // Python's isprintable: categories L, M, N, P, S
		b.WriteRune(r)
	case r <= 0xff:
		b.WriteString(`\x`)
		b.WriteString(hexDigits(r, 2))
	case r <= 0xffff:
		b.WriteString(`\u`)
		b.WriteString(hexDigits(r, 4))
	default:
		b.WriteString(`\U`)
		b.WriteString(hexDigits(r, 8))
	}
}

func hexDigits(r rune, n int) string {
	s := strconv.FormatInt(int64(r), 16)
	return strings.Repeat("0", n-len(s)) + s
}

// reprRuneLen is how many characters writeReprRune writes for r.
func reprRuneLen(r rune, q byte) int {
	switch {
	case r == rune(q) || r == '\\' || r == '\t' || r == '\n' || r == '\r':
		return 2
	case r < ' ' || r == 0x7f:
		return 4
	case r < 0x7f || unicode.IsPrint(r):
		return 1
	case r <= 0xff:
		return 4
	case r <= 0xffff:
		return 6
	}
	return 10
}

// strReprLen is len(repr(s)) in characters, as Python counts them.
func strReprLen(s string) int {
	q := pyQuote(s)
	n := 2
	for _, r := range s {
		n += reprRuneLen(r, q)
	}
	return n
}

// pyFloatRepr is Python's repr(float): the shortest digits that read back
// as f, in positional notation for exponents -4 to 15 and in scientific
// notation (at least two exponent digits) otherwise.
func pyFloatRepr(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // -d.ddde±dd
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mant, exps, _ := strings.Cut(s, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(exps)
	if exp < -4 || exp >= 16 {
		m := digits[:1]
		if len(digits) > 1 {
			m += "." + digits[1:]
		}
		es := "+"
		if exp < 0 {
			es, exp = "-", -exp
		}
		e := strconv.Itoa(exp)
		if len(e) < 2 {
			e = "0" + e
		}
		return sign + m + "e" + es + e
	}
	if exp < 0 {
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	if len(digits) <= exp+1 {
		return sign + digits + strings.Repeat("0", exp+1-len(digits)) + ".0"
	}
	return sign + digits[:exp+1] + "." + digits[exp+1:]
}

// ---- pprint.pformat(v, width=72, sort_dicts=False)

// A ppNode is a value with the length of its repr(), which pprint asks
// for at every level: computing it once keeps pformat linear.
type ppNode struct {
	v       any
	reprLen int
	items   []*ppNode // list items, or dict values
	keyLens []int     // dict keys' repr lengths
}

func newPPNode(v any) *ppNode {
	n := &ppNode{v: v}
	switch x := v.(type) {
	case nil:
		n.reprLen = 4
	case bool:
		n.reprLen = len(pyRepr(x))
	case string:
		n.reprLen = strReprLen(x)
	case pyInt:
		n.reprLen = len(x)
	case float64:
		n.reprLen = len(pyFloatRepr(x))
	case []any:
		n.reprLen = 2
		for i, e := range x {
			c := newPPNode(e)
			n.items = append(n.items, c)
			n.reprLen += c.reprLen
			if i > 0 {
				n.reprLen += 2
			}
		}
	case *pyDict:
		n.reprLen = 2
		for i, k := range x.keys {
			c := newPPNode(x.vals[k])
			kl := strReprLen(k)
			n.items = append(n.items, c)
			n.keyLens = append(n.keyLens, kl)
			n.reprLen += kl + 2 + c.reprLen
			if i > 0 {
				n.reprLen += 2
			}
		}
	}
	return n
}

// textLimit caps the text an error message may grow to: pprint of a
// deeply nested value is quadratic in its depth.
const textLimit = 64 << 10

// limitedText is a strings.Builder that stops taking text at textLimit.
type limitedText struct {
	b   strings.Builder
	cut bool
}

func (t *limitedText) WriteString(s string) {
	if t.cut {
		return
	}
	if t.b.Len()+len(s) > textLimit {
		s = s[:textLimit-t.b.Len()]
		for len(s) > 0 && !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		t.b.WriteString(s)
		t.cut = true
		return
	}
	t.b.WriteString(s)
}

func (t *limitedText) String() string {
	if t.cut {
		return t.b.String() + "\n[… cut: the full message is longer than 64 KiB]"
	}
	return t.b.String()
}

const ppWidth = 72

type pprinter struct{ w *limitedText }

// pformat returns pprint.pformat(v, width=72, sort_dicts=False), the
// form jsonschema 4.23 and later print schemas and instances in.
func pformat(v any) string {
	w := &limitedText{}
	(&pprinter{w}).format(newPPNode(v), 0, 0, 0)
	return w.String()
}

func (p *pprinter) format(n *ppNode, indent, allowance, level int) {
	if p.w.cut {
		return
	}
	if n.reprLen > ppWidth-indent-allowance {
		switch x := n.v.(type) {
		case *pyDict:
			p.dict(n, x, indent, allowance, level+1)
			return
		case []any:
			p.list(n, indent, allowance, level+1)
			return
		case string:
			p.str(x, indent, allowance, level+1)
			return
		}
	}
	p.w.WriteString(pyRepr(n.v))
}

func (p *pprinter) dict(n *ppNode, d *pyDict, indent, allowance, level int) {
	p.w.WriteString("{")
	if len(d.keys) > 0 {
		// _format_dict_items
		allowance++
		indent++
		last := len(d.keys) - 1
		for i, k := range d.keys {
			p.w.WriteString(pyRepr(k))
			p.w.WriteString(": ")
			a := 1
			if i == last {
				a = allowance
			}
			p.format(n.items[i], indent+n.keyLens[i]+2, a, level)
			if i != last {
				p.w.WriteString(",\n" + strings.Repeat(" ", indent))
			}
		}
	}
	p.w.WriteString("}")
}

func (p *pprinter) list(n *ppNode, indent, allowance, level int) {
	p.w.WriteString("[")
	// _format_items
	allowance++
	indent++
	last := len(n.items) - 1
	for i, c := range n.items {
		if i > 0 {
			p.w.WriteString(",\n" + strings.Repeat(" ", indent))
		}
		a := 1
		if i == last {
			a = allowance
		}
		p.format(c, indent, a, level)
	}
	p.w.WriteString("]")
}

// str is pprint's _pprint_str: a string too long for its line is cut
// into lines at line ends and then after runs of white space, each piece
// printed as its own repr.
func (p *pprinter) str(s string, indent, allowance, level int) {
	if s == "" {
		p.w.WriteString("''")
		return
	}
	var chunks []string
	lines := pySplitLinesKeepEnds(s)
	if level == 1 {
		indent++
		allowance++
	}
	maxWidth := ppWidth - indent
	maxWidth1 := maxWidth
	var rep string
	for i, line := range lines {
		rep = pyRepr(line)
		if i == len(lines)-1 {
			maxWidth1 -= allowance
		}
		if utf8.RuneCountInString(rep) <= maxWidth1 {
			chunks = append(chunks, rep)
			continue
		}
		parts := pySpaceParts(line)
		maxWidth2 := maxWidth
		current := ""
		for j, part := range parts {
			candidate := current + part
			if j == len(parts)-1 && i == len(lines)-1 {
				maxWidth2 -= allowance
			}
			if strReprLen(candidate) > maxWidth2 {
				if current != "" {
					chunks = append(chunks, pyRepr(current))
				}
				current = part
			} else {
				current = candidate
			}
		}
		if current != "" {
			chunks = append(chunks, pyRepr(current))
		}
	}
	if len(chunks) == 1 {
		p.w.WriteString(rep)
		return
	}
	if level == 1 {
		p.w.WriteString("(")
	}
	for i, c := range chunks {
		if i > 0 {
			p.w.WriteString("\n" + strings.Repeat(" ", indent))
		}
		p.w.WriteString(c)
	}
	if level == 1 {
		p.w.WriteString(")")
	}
}

// pyIsSpace is str.isspace() for one character, which is what \s
// matches in Python's re: Go's unicode.IsSpace plus the separators
// U+001C to U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pySplitLinesKeepEnds is str.splitlines(True).
func pySplitLinesKeepEnds(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		end := -1
		switch r {
		case '\r':
			end = i + size
			if end < len(s) && s[end] == '\n' {
				end++
			}
		case '\n', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			end = i + size
		}
		if end < 0 {
			i += size
			continue
		}
		lines = append(lines, s[start:end])
		start, i = end, end
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}

// pySpaceParts is re.findall(r'\S*\s*', line) less its final empty
// match: runs of non-space characters, each with the spaces after it.
func pySpaceParts(line string) []string {
	var parts []string
	start := 0
	inSpace := false
	for i, r := range line {
		sp := pyIsSpace(r)
		if inSpace && !sp {
			parts = append(parts, line[start:i])
			start = i
		}
		inSpace = sp
	}
	if start < len(line) {
		parts = append(parts, line[start:])
	}
	return parts
}
