package gateway

import (
	"cmp"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// The request schemas of the original's RPCs, verbatim (JSON Schema
// draft-07, every object closed with additionalProperties false).
//
// The original checked a body with Python's jsonschema.validate and
// answered 400 with "<fn> cannot be executed due to invalid arguments:
// {e}", e being the ValidationError, so the text is all of str(e):
//
//	'error' is not of type 'integer'
//
//	Failed validating 'type' in schema['properties']['port']:
//	    {'type': 'integer'}
//
//	On instance['port']:
//	    'error'
//
// Bodies are validated here by github.com/santhosh-tekuri/jsonschema, and
// its errors are turned into the one Python would raise and printed as
// Python prints it. The original pinned no jsonschema; it was installed
// by pip into Python 3.12 between late 2024 and 2025, so it was 4.23 or
// later, which print dicts in their own key order and, among errors at
// one depth, pick the one with the greatest path. This follows them (the
// tests' texts come from 4.26.0). 4.22 and earlier sorted dict keys and
// picked the first error found.
//
//go:embed schemas/*.json
var schemaFiles embed.FS

// schema is one RPC's compiled schema, with its document as Python's
// json.load gives it (for the key order of the printed schema).
type schema struct {
	compiled *jsonschema.Schema
	doc      any
}

// draft07 is the $schema every file declares: the translation of errors
// follows Python's Draft7Validator.
const draft07 = "http://json-schema.org/draft-07/schema#"

// pyKeywords are the draft-07 keywords whose errors are translated as
// Python's jsonschema words them, and the annotations Python ignores. A
// schema with any other keyword fails to load, so no message can silently
// differ from the original's. format is an annotation: jsonschema.validate
// is given no format checker. (pattern is matched by Go's regexp, not
// Python's re: the same for plain patterns.)
var pyKeywords = map[string]bool{
	"type": true, "enum": true, "const": true,
	"properties": true, "required": true, "additionalProperties": true,
	"minProperties": true, "maxProperties": true,
	"items": true, "additionalItems": true, "minItems": true, "maxItems": true,
	"minLength": true, "maxLength": true, "pattern": true,
	"minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true,
	"format":  true,
	"$schema": true, "$comment": true, "title": true, "description": true,
	"default": true, "examples": true, "readOnly": true, "writeOnly": true,
}

// loadSchemas compiles the named embedded schemas once.
func loadSchemas(names []string) (map[string]*schema, error) {
	files := map[string][]byte{}
	for _, name := range names {
		b, err := schemaFiles.ReadFile("schemas/" + name + ".json")
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	return compileSchemas(files)
}

// compileSchemas compiles schema documents, by name.
func compileSchemas(files map[string][]byte) (map[string]*schema, error) {
	c := jsonschema.NewCompiler()
	docs := map[string]any{}
	for name, b := range files {
		doc, err := decodePy(b)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		d, ok := doc.(*pyDict)
		if !ok {
			return nil, fmt.Errorf("schema %s is not an object", name)
		}
		if s, _ := d.get("$schema"); s != draft07 {
			return nil, fmt.Errorf("schema %s: $schema is %v, not draft-07", name, s)
		}
		formats := map[string]bool{}
		if err := checkKeywords(doc, formats); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		// Python's jsonschema.validate asserts no format; the library
		// asserts them for draft-07, unless told a format is anything.
		for f := range formats {
			c.RegisterFormat(&jsonschema.Format{Name: f, Validate: func(any) error { return nil }})
		}
		if err := c.AddResource(schemaURL(name), plainJSON(doc)); err != nil {
			return nil, err
		}
		docs[name] = doc
	}
	out := map[string]*schema{}
	for name := range files {
		sch, err := c.Compile(schemaURL(name))
		if err != nil {
			return nil, err
		}
		out[name] = &schema{compiled: sch, doc: docs[name]}
	}
	return out, nil
}

func schemaURL(name string) string { return "mem:///schemas/" + name + ".json" }

// checkKeywords refuses a schema with a keyword outside pyKeywords and
// collects its formats.
func checkKeywords(s any, formats map[string]bool) error {
	d, ok := s.(*pyDict)
	if !ok {
		if _, ok := s.(bool); ok {
			return nil
		}
		return errors.New("a schema is neither an object nor a boolean")
	}
	for _, k := range d.keys {
		if !pyKeywords[k] {
			return fmt.Errorf("keyword %q: its errors are not translated into Python's words", k)
		}
		v := d.vals[k]
		var subs []any
		switch k {
		case "properties":
			p, ok := v.(*pyDict)
			if !ok {
				return errors.New("properties is not an object")
			}
			for _, name := range p.keys {
				subs = append(subs, p.vals[name])
			}
		case "items":
			if l, ok := v.([]any); ok {
				subs = l
			} else {
				subs = []any{v}
			}
		case "additionalProperties", "additionalItems":
			subs = []any{v}
		case "format":
			f, _ := v.(string)
			if f == "regex" { // the library asserts it whatever it is told
				return errors.New(`format "regex" would be asserted, which Python does not do`)
			}
			formats[f] = true
		}
		for _, sub := range subs {
			if err := checkKeywords(sub, formats); err != nil {
				return err
			}
		}
	}
	return nil
}

// check validates a JSON body and returns "" or the text of the error
// Python's jsonschema.validate would raise, str(e).
func (s *schema) check(body []byte) string {
	inst, err := decodePy(body)
	if err != nil {
		return "Invalid JSON: " + err.Error()
	}
	verr := s.compiled.Validate(plainJSON(inst))
	if verr == nil {
		return ""
	}
	var ve *jsonschema.ValidationError
	if !errors.As(verr, &ve) {
		return verr.Error()
	}
	redactPassword(inst)
	var errs []*pyError
	for _, leaf := range leaves(ve, nil) {
		errs = append(errs, s.pyErrors(leaf, inst)...)
	}
	best := bestMatch(errs)
	if best == nil {
		return ve.Error()
	}
	return best.String()
}

// redactPassword hides the task password: Python would print it with the
// body, but no answer of flmngr carries a password in clear.
func redactPassword(inst any) {
	if d, ok := inst.(*pyDict); ok {
		if _, ok := d.vals["password"].(string); ok {
			d.vals["password"] = "***"
		}
	}
}

// leaves are the errors that say what failed, without the groups.
func leaves(e *jsonschema.ValidationError, out []*jsonschema.ValidationError) []*jsonschema.ValidationError {
	switch e.ErrorKind.(type) {
	case *kind.Schema, *kind.Group:
		for _, c := range e.Causes {
			out = leaves(c, out)
		}
		return out
	}
	return append(out, e)
}

// pyError is a jsonschema.ValidationError as Python builds it.
type pyError struct {
	message    string
	validator  string // the keyword; "" for a false schema (printed None)
	path       []any  // where in the instance: keys (string) and indexes (int)
	schemaPath []any  // where in the schema, the keyword last
	schema     any    // the (sub)schema holding the keyword
	instance   any    // the value that failed
	order      []int  // where Python's iter_errors yields it
}

// pyErrors translates one of the library's errors into the Python errors
// it stands for (one per missing property for required).
func (s *schema) pyErrors(e *jsonschema.ValidationError, inst any) []*pyError {
	_, frag, _ := strings.Cut(e.SchemaURL, "#")
	sch, schemaPath := resolvePointer(s.doc, frag)
	instance, path := resolveInstance(inst, e.InstanceLocation)
	pe := &pyError{path: path, schemaPath: schemaPath, schema: sch, instance: instance}
	val := func(k string) any {
		if d, ok := sch.(*pyDict); ok {
			return d.vals[k]
		}
		return nil
	}
	kw := e.ErrorKind.KeywordPath()
	if len(kw) == 1 {
		pe.validator = kw[0]
		pe.schemaPath = append(slices.Clip(pe.schemaPath), kw[0])
	}
	r := func() string { return pyRepr(instance) }
	switch k := e.ErrorKind.(type) {
	case *kind.FalseSchema:
		pe.message = "False schema does not allow " + r()
	case *kind.Type:
		types, ok := val("type").([]any)
		if !ok {
			types = []any{val("type")}
		}
		reprs := make([]string, len(types))
		for i, t := range types {
			reprs[i] = pyRepr(t)
		}
		pe.message = r() + " is not of type " + strings.Join(reprs, ", ")
	case *kind.Required:
		required, _ := val("required").([]any)
		var out []*pyError
		for i, p := range required {
			if p, _ := p.(string); slices.Contains(k.Missing, p) {
				e := *pe
				e.message = pyRepr(p) + " is a required property"
				key, _ := s.order(&e, inst)
				e.order = append(key, i)
				out = append(out, &e)
			}
		}
		return out
	case *kind.AdditionalProperties:
		extra := slices.Sorted(slices.Values(k.Properties))
		reprs := make([]string, len(extra))
		for i, p := range extra {
			reprs[i] = pyRepr(p)
		}
		pe.message = fmt.Sprintf("Additional properties are not allowed (%s %s unexpected)", strings.Join(reprs, ", "), wasWere(len(extra)))
	case *kind.AdditionalItems:
		items, _ := val("items").([]any)
		list, _ := instance.([]any)
		var reprs []string
		for _, v := range list[min(len(items), len(list)):] {
			reprs = append(reprs, pyRepr(v))
		}
		pe.message = fmt.Sprintf("Additional items are not allowed (%s %s unexpected)", strings.Join(reprs, ", "), wasWere(len(reprs)))
	case *kind.Enum:
		pe.message = r() + " is not one of " + pyRepr(val("enum"))
	case *kind.Const:
		pe.message = pyRepr(val("const")) + " was expected"
	case *kind.MinLength:
		pe.message = r() + pick(pyEquals(val("minLength"), 1), " should be non-empty", " is too short")
	case *kind.MaxLength:
		pe.message = r() + pick(pyEquals(val("maxLength"), 0), " is expected to be empty", " is too long")
	case *kind.MinItems:
		pe.message = r() + pick(pyEquals(val("minItems"), 1), " should be non-empty", " is too short")
	case *kind.MaxItems:
		pe.message = r() + pick(pyEquals(val("maxItems"), 0), " is expected to be empty", " is too long")
	case *kind.MinProperties:
		pe.message = r() + pick(pyEquals(val("minProperties"), 1), " should be non-empty", " does not have enough properties")
	case *kind.MaxProperties:
		pe.message = r() + pick(pyEquals(val("maxProperties"), 0), " is expected to be empty", " has too many properties")
	case *kind.Pattern:
		pe.message = r() + " does not match " + pyRepr(val("pattern"))
	case *kind.Minimum:
		pe.message = r() + " is less than the minimum of " + pyRepr(val("minimum"))
	case *kind.Maximum:
		pe.message = r() + " is greater than the maximum of " + pyRepr(val("maximum"))
	case *kind.ExclusiveMinimum:
		pe.message = r() + " is less than or equal to the minimum of " + pyRepr(val("exclusiveMinimum"))
	case *kind.ExclusiveMaximum:
		pe.message = r() + " is greater than or equal to the maximum of " + pyRepr(val("exclusiveMaximum"))
	default:
		// Not reached with the keywords loadSchemas lets through.
		pe.message = e.Error()
	}
	var named bool
	pe.order, named = s.order(pe, inst)
	if _, ok := e.ErrorKind.(*kind.FalseSchema); ok {
		// Python's descend() yields a false schema's error before adding
		// its own path and schema path: the error has its parent's.
		if len(pe.path) > 0 {
			pe.path = pe.path[:len(pe.path)-1]
		}
		if named && len(pe.schemaPath) > 0 {
			pe.schemaPath = pe.schemaPath[:len(pe.schemaPath)-1]
		}
	}
	return []*pyError{pe}
}

func wasWere(n int) string { return pick(n == 1, "was", "were") }

func pick(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// resolvePointer follows a JSON pointer (as a URL fragment) in a schema
// document, and returns what it points at and its path as Python's
// schema_path holds it (indexes of lists as ints).
func resolvePointer(doc any, frag string) (any, []any) {
	var path []any
	if frag == "" {
		return doc, path
	}
	cur := doc
	for _, tok := range strings.Split(strings.TrimPrefix(frag, "/"), "/") {
		if t, err := url.PathUnescape(tok); err == nil {
			tok = t
		}
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		cur, path = step(cur, tok, path)
	}
	return cur, path
}

// step follows one token of a path into a dict or a list, and appends
// it to path as Python holds it (indexes of lists as ints).
func step(cur any, tok string, path []any) (any, []any) {
	switch x := cur.(type) {
	case *pyDict:
		return x.vals[tok], append(path, tok)
	case []any:
		i, _ := strconv.Atoi(tok)
		if i >= 0 && i < len(x) {
			cur = x[i]
		}
		return cur, append(path, i)
	}
	return cur, path
}

// resolveInstance is the value at the library's instance location and
// that location as Python's error.path holds it.
func resolveInstance(inst any, loc []string) (any, []any) {
	path := []any{}
	cur := inst
	for _, tok := range loc {
		cur, path = step(cur, tok, path)
	}
	return cur, path
}

// order is where Python yields e: iter_errors goes through a schema's
// keywords in the file's order, properties in the schema's order, items
// in the list's order, and required's missing properties in its order.
// named says whether the last step down the schema was by a name or
// index in it (properties, items as a list) rather than by a keyword
// alone.
func (s *schema) order(e *pyError, inst any) (key []int, named bool) {
	node, cur := s.doc, inst
	pi := 0
	// step moves cur one step down e.path.
	step := func() any {
		if pi >= len(e.path) {
			return nil
		}
		p := e.path[pi]
		pi++
		switch x := cur.(type) {
		case *pyDict:
			cur = x.vals[p.(string)]
		case []any:
			if i := p.(int); i >= 0 && i < len(x) {
				cur = x[i]
			}
		}
		return p
	}
	sp := e.schemaPath
	for j := 0; j < len(sp); j++ {
		d, ok := node.(*pyDict)
		if !ok {
			break
		}
		kw, _ := sp[j].(string)
		key = append(key, d.index(kw))
		if j+1 == len(sp) && e.validator != "" { // the keyword that failed
			break
		}
		named = kw == "properties" || kw == "items" && isList(d.vals[kw])
		switch kw {
		case "properties":
			j++
			name, _ := sp[j].(string)
			props, _ := d.vals[kw].(*pyDict)
			key = append(key, props.index(name))
			node = props.vals[name]
			step()
		case "items":
			if l, ok := d.vals[kw].([]any); ok {
				j++
				i, _ := sp[j].(int)
				key = append(key, i)
				node = l[i]
				step()
				continue
			}
			i, _ := step().(int)
			key = append(key, i)
			node = d.vals[kw]
		case "additionalItems":
			i, _ := step().(int)
			key = append(key, i)
			node = d.vals[kw]
		case "additionalProperties":
			// Python goes through a set of the extra names, in an order
			// that changes from process to process; the instance's order
			// stands in for it.
			obj, _ := cur.(*pyDict)
			name, _ := step().(string)
			if obj != nil {
				key = append(key, obj.index(name))
			}
			node = d.vals[kw]
		default:
			return key, named
		}
	}
	return key, named
}

func isList(v any) bool {
	_, ok := v.([]any)
	return ok
}

// bestMatch is jsonschema.exceptions.best_match (4.23 and later) over
// errors in the order iter_errors yields them: max by relevance, the
// first of equals winning. Relevance prefers a shorter path, then the
// greater path, then an error whose schema's type the instance matches
// not. (anyOf and oneOf, the weak keywords, are not among pyKeywords.)
func bestMatch(errs []*pyError) *pyError {
	slices.SortStableFunc(errs, func(a, b *pyError) int { return slices.Compare(a.order, b.order) })
	var best *pyError
	for _, e := range errs {
		if best == nil || relevance(e, best) > 0 {
			best = e
		}
	}
	return best
}

// relevance compares a and b as Python compares the tuples
// (-len(path), path, not matches_type).
func relevance(a, b *pyError) int {
	if c := cmp.Compare(len(b.path), len(a.path)); c != 0 {
		return c
	}
	if c := slices.CompareFunc(a.path, b.path, comparePathElem); c != 0 {
		return c
	}
	return cmp.Compare(boolInt(!a.matchesType()), boolInt(!b.matchesType()))
}

// comparePathElem orders keys and indexes. Python cannot compare a str
// with an int (a TypeError, never met with the schemas here, whose
// values at one depth are all of one kind); an int comes first here.
func comparePathElem(a, b any) int {
	ai, aInt := a.(int)
	bi, bInt := b.(int)
	switch {
	case aInt && bInt:
		return cmp.Compare(ai, bi)
	case aInt:
		return -1
	case bInt:
		return 1
	}
	return strings.Compare(a.(string), b.(string))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// matchesType is _Error._matches_type: the schema has a type and the
// instance is of it.
func (e *pyError) matchesType() bool {
	d, ok := e.schema.(*pyDict)
	if !ok {
		return false
	}
	t, ok := d.get("type")
	if !ok {
		return false
	}
	switch t := t.(type) {
	case string:
		return pyIsType(e.instance, t)
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok && pyIsType(e.instance, s) {
				return true
			}
		}
	}
	return false
}

// String is str(e): _Error.__str__ of jsonschema 4.23 and later.
func (e *pyError) String() string {
	validator := "None"
	if e.validator != "" {
		validator = pyRepr(e.validator)
	}
	schemaPath := e.schemaPath
	if len(schemaPath) > 0 {
		schemaPath = schemaPath[:len(schemaPath)-1]
	}
	return e.message + "\n\n" +
		"Failed validating " + validator + " in " + formatAsIndex("schema", schemaPath) + ":\n" +
		"    " + indentLines(pformat(e.schema)) + "\n\n" +
		"On " + formatAsIndex("instance", e.path) + ":\n" +
		"    " + indentLines(pformat(e.instance))
}

// formatAsIndex is jsonschema._utils.format_as_index: schema['a'][0].
func formatAsIndex(container string, indices []any) string {
	if len(indices) == 0 {
		return container
	}
	var b strings.Builder
	b.WriteString(container)
	for _, i := range indices {
		b.WriteByte('[')
		switch i := i.(type) {
		case int:
			b.WriteString(strconv.Itoa(i))
		case string:
			b.WriteString(pyRepr(i))
		}
		b.WriteByte(']')
	}
	return b.String()
}

// indentLines indents all lines but the first by four spaces, as
// __str__'s indent() and dedent() do to pformat's lines.
func indentLines(s string) string {
	return strings.ReplaceAll(s, "\n", "\n    ")
}
