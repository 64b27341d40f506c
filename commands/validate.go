package commands

import (
	"math"
	"path"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// Limits on operator input.
const (
	maxHost      = 253
	maxArguments = 4096
	maxFiles     = 256
	// maxTaskFiles bounds the files a task holds across uploads, so its
	// record and file list stay one small message.
	maxTaskFiles = 1024
	maxFileName  = 255
	maxTags      = 32
	maxTag       = 64
	maxArgv      = 64
	maxSensors   = 64
	maxSensor    = 64
	maxExtra     = 64
	maxExtraText = 1024
	maxUsername  = 128
	maxPassword  = 72 // bcrypt hashes no more
)

func validateID(field, id string) error {
	if id == "" {
		return fault.Invalid(field, "%s is required", field)
	}
	if !events.ValidID(id) {
		return fault.Invalid(field, "%s %q must be 1-64 letters, digits, '_' or '-', starting with a letter or digit", field, id)
	}
	return nil
}

func validateHost(h string) error {
	switch {
	case strings.TrimSpace(h) == "":
		return fault.Invalid("host", "host is required")
	case len(h) > maxHost:
		return fault.Invalid("host", "host is longer than %d characters", maxHost)
	case strings.ContainsAny(h, " \t\r\n/\x00"):
		return fault.Invalid("host", "host %q may not contain spaces or '/'", h)
	}
	return nil
}

func validatePort(p int) error {
	if p < 1 || p > 65535 {
		return fault.Invalid("port", "port must be between 1 and 65535, got %d", p)
	}
	return nil
}

// ValidateFileName reports whether name is a safe relative file path inside
// a task directory: relative, clean, without "..", NUL or backslash.
func ValidateFileName(field, name string) error {
	switch {
	case name == "":
		return fault.Invalid(field, "file name is empty")
	case len(name) > maxFileName:
		return fault.Invalid(field, "file name is longer than %d bytes", maxFileName)
	case !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\\"):
		return fault.Invalid(field, "file name %q contains a NUL, a backslash or invalid UTF-8", name)
	case path.IsAbs(name):
		return fault.Invalid(field, "file name %q must be relative", name)
	case path.Clean(name) != name:
		return fault.Invalid(field, "file name %q is not clean (use %q)", name, path.Clean(name))
	case name == ".." || strings.HasPrefix(name, "../"):
		return fault.Invalid(field, "file name %q escapes the task directory", name)
	case name == ".":
		return fault.Invalid(field, "file name %q names the task directory itself", name)
	}
	return nil
}

func validateFiles(files []string) error {
	if len(files) > maxFiles {
		return fault.Invalid("files_paths", "at most %d files", maxFiles)
	}
	seen := make(map[string]bool, len(files))
	for _, f := range files {
		if err := ValidateFileName("files_paths", f); err != nil {
			return err
		}
		if seen[f] {
			return fault.Invalid("files_paths", "file %q is listed twice", f)
		}
		seen[f] = true
	}
	return nil
}

// normalizeTags trims tags and drops empty and repeated ones (the original
// web form sent [""] for no tags).
func normalizeTags(tags []string) ([]string, error) {
	out := make([]string, 0, len(tags))
	seen := map[string]bool{}
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || seen[t] {
			continue
		}
		if len(t) > maxTag || !utf8.ValidString(t) {
			return nil, fault.Invalid("tags", "tag %q is longer than %d bytes or not UTF-8", t, maxTag)
		}
		seen[t] = true
		out = append(out, t)
	}
	if len(out) > maxTags {
		return nil, fault.Invalid("tags", "at most %d tags", maxTags)
	}
	return out, nil
}

func validateArguments(field, s string) error {
	if len(s) > maxArguments {
		return fault.Invalid(field, "%s is longer than %d bytes", field, maxArguments)
	}
	if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
		return fault.Invalid(field, "%s contains a NUL or invalid UTF-8", field)
	}
	return nil
}

func validateArgv(field string, argv []string) error {
	if len(argv) > maxArgv {
		return fault.Invalid(field, "%s has more than %d elements", field, maxArgv)
	}
	for i, a := range argv {
		if i == 0 && strings.TrimSpace(a) == "" {
			return fault.Invalid(field, "%s must start with a program", field)
		}
		if err := validateArguments(field, a); err != nil {
			return err
		}
	}
	return nil
}

func validateCredentials(username, password string, hasHash bool) error {
	if len(username) > maxUsername {
		return fault.Invalid("username", "username is longer than %d bytes", maxUsername)
	}
	if len(password) > maxPassword {
		return fault.Invalid("password", "password is longer than %d bytes", maxPassword)
	}
	if (password != "" || hasHash) && username == "" {
		return fault.Invalid("username", "a password needs a username")
	}
	return nil
}

var extraKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

func validateSensors(sensors []string) error {
	if len(sensors) > maxSensors {
		return fault.Invalid("sensors", "at most %d sensors", maxSensors)
	}
	for _, s := range sensors {
		if strings.TrimSpace(s) == "" || len(s) > maxSensor || !utf8.ValidString(s) {
			return fault.Invalid("sensors", "sensor %q must be 1-%d bytes of UTF-8", s, maxSensor)
		}
	}
	return nil
}

func validateRatio(field string, v *float64) error {
	if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
		return fault.Invalid(field, "%s must be a finite number", field)
	}
	return nil
}

// validateExtra checks free-form attributes: identifier keys and scalar
// values (nil removes a key in a report).
func validateExtra(extra map[string]any) error {
	if len(extra) > maxExtra {
		return fault.Invalid("extra", "at most %d extra attributes", maxExtra)
	}
	for k, v := range extra {
		if !extraKey.MatchString(k) {
			return fault.Invalid("extra", "attribute name %q must be an identifier (letters, digits, '_')", k)
		}
		switch x := v.(type) {
		case nil, bool:
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fault.Invalid("extra", "attribute %q must be a finite number", k)
			}
		case string:
			if len(x) > maxExtraText || !utf8.ValidString(x) {
				return fault.Invalid("extra", "attribute %q is longer than %d bytes or not UTF-8", k, maxExtraText)
			}
		default:
			return fault.Invalid("extra", "attribute %q must be a string, number or boolean, got %T", k, v)
		}
	}
	return nil
}
