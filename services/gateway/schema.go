package gateway

import (
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// The request schemas of the original's RPCs (JSON Schema draft-07, every
// object closed with additionalProperties false), as its services and web
// pages used them.
//
//go:embed schemas/*.json
var schemaFiles embed.FS

// schema is the part of JSON Schema these files use.
type schema struct {
	Type                 string             `json:"type"`
	Properties           map[string]*schema `json:"properties"`
	Required             []string           `json:"required"`
	AdditionalProperties *bool              `json:"additionalProperties"`
	Items                *schema            `json:"items"`
}

func loadSchema(name string) (*schema, error) {
	b, err := schemaFiles.ReadFile("schemas/" + name + ".json")
	if err != nil {
		return nil, err
	}
	var s schema
	return &s, json.Unmarshal(b, &s)
}

// validate checks a decoded JSON value against a schema and returns the
// first violation in the words of Python's jsonschema, which the
// original's messages carried.
func (s *schema) validate(v any) string {
	if s == nil {
		return ""
	}
	if s.Type != "" && !hasType(v, s.Type) {
		return fmt.Sprintf("%s is not of type '%s'", pyRepr(v), s.Type)
	}
	switch x := v.(type) {
	case map[string]any:
		if s.AdditionalProperties != nil && !*s.AdditionalProperties {
			var extra []string
			for k := range x {
				if _, ok := s.Properties[k]; !ok {
					extra = append(extra, pyRepr(k))
				}
			}
			if len(extra) > 0 {
				slices.Sort(extra)
				verb := "was"
				if len(extra) > 1 {
					verb = "were"
				}
				return fmt.Sprintf("Additional properties are not allowed (%s %s unexpected)", strings.Join(extra, ", "), verb)
			}
		}
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				return fmt.Sprintf("%s is a required property", pyRepr(r))
			}
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if msg := s.Properties[k].validate(x[k]); msg != "" {
				return msg
			}
		}
	case []any:
		for _, item := range x {
			if msg := s.Items.validate(item); msg != "" {
				return msg
			}
		}
	}
	return ""
}

func hasType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
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
		_, ok := v.(float64)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f) && !math.IsInf(f, 0)
	}
	return false
}

// pyRepr renders a JSON value as Python would print it.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + strings.ReplaceAll(x, "'", `\'`) + "'"
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return fmt.Sprintf("%d", int64(x))
		}
		return fmt.Sprint(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = pyRepr(k) + ": " + pyRepr(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}
