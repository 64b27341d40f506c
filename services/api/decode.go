package api

import (
	"encoding/json"
	"errors"
	"strings"
)

// fieldOf names the JSON field a decoding error is about, when it can.
func fieldOf(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return te.Field
	}
	// encoding/json reports unknown fields as: json: unknown field "x"
	if _, after, ok := strings.Cut(err.Error(), "unknown field \""); ok {
		name, _, _ := strings.Cut(after, "\"")
		return name
	}
	return ""
}
