package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/flmngr/flmngr/commands/fault"
)

// statuses are the HTTP statuses of the error kinds.
var statuses = map[fault.Kind]int{
	fault.KindInvalid:             http.StatusBadRequest,
	fault.KindNotFound:            http.StatusNotFound,
	fault.KindConflict:            http.StatusConflict,
	fault.KindUnauthorized:        http.StatusUnauthorized,
	fault.KindForbidden:           http.StatusForbidden,
	fault.KindUnavailable:         http.StatusServiceUnavailable,
	fault.KindInsufficientStorage: http.StatusInsufficientStorage,
	fault.KindRateLimited:         http.StatusTooManyRequests,
}

// status maps an error kind to its HTTP status.
func status(k fault.Kind) int {
	if code, ok := statuses[k]; ok {
		return code
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error *fault.Error `json:"error"`
}

// writeError answers {"error":{"kind","message","field"}} with the status
// of the error's kind; internal details stay in the log.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := fault.AsError(err)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		e = &fault.Error{Kind: fault.KindInvalid, Message: "request body too large"}
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{e})
		return
	}
	if e.Kind == fault.KindInternal || e.Kind == fault.KindUnavailable {
		g.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e.Kind == fault.KindInternal {
		e = &fault.Error{Kind: fault.KindInternal, Message: "internal error"}
	}
	if e.Kind == fault.KindUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flmngr"`)
	}
	if e.Kind == fault.KindRateLimited {
		w.Header().Set("Retry-After", strconv.FormatInt((e.RetryAfterMS+999)/1000, 10))
	}
	writeJSON(w, status(e.Kind), errorBody{e})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
