package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/flmngr/flmngr/commands"
)

// status maps an error kind to its HTTP status.
func status(k commands.Kind) int {
	switch k {
	case commands.KindInvalid:
		return http.StatusBadRequest
	case commands.KindNotFound:
		return http.StatusNotFound
	case commands.KindConflict:
		return http.StatusConflict
	case commands.KindUnauthorized:
		return http.StatusUnauthorized
	case commands.KindForbidden:
		return http.StatusForbidden
	case commands.KindUnavailable:
		return http.StatusServiceUnavailable
	case commands.KindInsufficientStorage:
		return http.StatusInsufficientStorage
	case commands.KindRateLimited:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Error *commands.Error `json:"error"`
}

// writeError answers {"error":{"kind","message","field"}} with the status
// of the error's kind; internal details stay in the log.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := commands.AsError(err)
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		e = &commands.Error{Kind: commands.KindInvalid, Message: "request body too large"}
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{e})
		return
	}
	if e.Kind == commands.KindInternal || e.Kind == commands.KindUnavailable {
		g.log.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e.Kind == commands.KindInternal {
		e = &commands.Error{Kind: commands.KindInternal, Message: "internal error"}
	}
	if e.Kind == commands.KindUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flmngr"`)
	}
	if e.Kind == commands.KindRateLimited {
		w.Header().Set("Retry-After", strconv.FormatInt((e.RetryAfterMS+999)/1000, 10))
	}
	writeJSON(w, status(e.Kind), errorBody{e})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
