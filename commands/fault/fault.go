// Package fault holds the kinds of error every layer shares: the domain
// raises them, the NATS API carries them, the gateway maps them to HTTP
// statuses and the CLI to its messages and exit status.
package fault

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for callers: the gateway maps it to an HTTP
// status, the CLI to its message, the NATS endpoints to their error code.
type Kind string

// Error kinds. They are part of the wire protocol; never rename one.
const (
	KindInvalid      Kind = "invalid"
	KindNotFound     Kind = "not_found"
	KindConflict     Kind = "conflict"
	KindUnauthorized Kind = "unauthorized"
	KindForbidden    Kind = "forbidden"
	KindUnavailable  Kind = "unavailable"
	KindRateLimited  Kind = "rate_limited"
	KindInternal     Kind = "internal"
	// KindInsufficientStorage: the cloud's disk is nearly full, so it
	// takes no command that would grow the log (reads go on).
	KindInsufficientStorage Kind = "insufficient_storage"
)

// Error is the one error type users see. Message is safe to show; Field
// names the offending input field, when there is one; Err keeps the detail
// for logs.
type Error struct {
	Kind    Kind   `json:"kind"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// RetryAfterMS, on a rate_limited error, is when to try again.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
	Err          error `json:"-"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Invalid reports bad input in a named field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFound reports an unknown task or client.
func NotFound(format string, args ...any) *Error {
	return &Error{Kind: KindNotFound, Message: fmt.Sprintf(format, args...)}
}

// Conflict reports a command that the current state does not allow.
func Conflict(format string, args ...any) *Error {
	return &Error{Kind: KindConflict, Message: fmt.Sprintf(format, args...)}
}

// Unavailable reports that a dependency (the log, a service) could not be
// reached in time.
func Unavailable(err error, format string, args ...any) *Error {
	return &Error{Kind: KindUnavailable, Message: fmt.Sprintf(format, args...), Err: err}
}

// RateLimited reports a caller that sends faster than it may; it may try
// again after the given wait.
func RateLimited(retry time.Duration, format string, args ...any) *Error {
	return &Error{Kind: KindRateLimited, Message: fmt.Sprintf(format, args...), RetryAfterMS: max(1, retry.Milliseconds())}
}

// Internal reports a bug or an unexpected failure; the detail stays in Err.
func Internal(err error, format string, args ...any) *Error {
	return &Error{Kind: KindInternal, Message: fmt.Sprintf(format, args...), Err: err}
}

// KindOf returns the kind of err: that of the first *Error in its chain,
// internal otherwise.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// AsError returns err as an *Error, wrapping anything else as internal.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Internal(err, "internal error")
}
