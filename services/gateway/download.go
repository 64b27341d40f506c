package gateway

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"path"
	"slices"
	"strconv"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/limit"
)

// The original's GET /download/<task_id>/<file> checks HTTP Basic
// credentials against the task's username and bcrypt-hashed password.
// Each check is expensive on purpose, so the endpoint is guarded:
//
//   - a token bucket per source address and one per task id refuse a
//     caller that asks too often (429 and Retry-After), before any work;
//   - at most a few checks run at once (passwordChecks; 503 and
//     Retry-After when none is free within a second);
//   - an unknown task, a wrong username and a wrong password answer the
//     same bytes (401) after the same work: one bcrypt comparison, with
//     the task's hash (done by the cloud's credentials query) or with a
//     dummy one (done here), so neither the status nor the time tells
//     which tasks or usernames exist.

// Download rates: a source may make 20 requests at once and 5 a second
// after that; all sources together may ask about one task 100 times at
// once and 20 a second after that (a task's clients fetch a few files
// each when it starts). Both are far above what an honest client needs
// and far below what guessing passwords needs.
const (
	downloadSourceRate  = 5
	downloadSourceBurst = 20
	downloadTaskRate    = 20
	downloadTaskBurst   = 100
)

// downloadGuard holds the download endpoint's limits.
type downloadGuard struct {
	bySource *limit.Limiter
	byTask   *limit.Limiter
	checks   *passwordChecks
}

func newDownloadGuard(checks int) *downloadGuard {
	return &downloadGuard{
		bySource: limit.New(downloadSourceRate, downloadSourceBurst),
		byTask:   limit.New(downloadTaskRate, downloadTaskBurst),
		checks:   newPasswordChecks(checks),
	}
}

// sourceOf is the address a request came from (the peer's: a header
// naming another one could be sent by anybody).
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// allow takes a token for the request's source and for its task; an
// invalid task id shares one bucket, so that made-up ids cannot fill the
// limiter with long keys.
func (d *downloadGuard) allow(r *http.Request, task string) (bool, time.Duration) {
	if ok, retry := d.bySource.Allow(sourceOf(r)); !ok {
		return false, retry
	}
	if !events.ValidID(task) {
		task = "\x00invalid"
	}
	return d.byTask.Allow(task)
}

// unauthorized is the one answer to every failed check.
func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="Login Required"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Unauthorized access. Please provide valid credentials."})
}

// retryLater answers a refusal with Retry-After in whole seconds.
func retryLater(w http.ResponseWriter, code int, retry time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.FormatInt(int64((retry+time.Second-1)/time.Second), 10))
	writeJSON(w, code, map[string]string{"error": msg})
}

// compatDownload serves a task's own files to whoever has its download
// credentials.
func (g *Gateway) compatDownload(w http.ResponseWriter, r *http.Request) {
	g.legacy.cors(w, r)
	id, name := r.PathValue("task"), r.PathValue("file")
	if ok, retry := g.downloads.allow(r, id); !ok {
		retryLater(w, http.StatusTooManyRequests, retry, "Too many requests; retry later")
		return
	}
	t, ok, err := g.checkDownload(r.Context(), r, id)
	if err != nil {
		if e := fault.AsError(err); e.Kind == fault.KindUnavailable && e.RetryAfterMS > 0 {
			retryLater(w, http.StatusServiceUnavailable, time.Duration(e.RetryAfterMS)*time.Millisecond, "Too many password checks at once; retry later")
			return
		}
		g.writeError(w, r, err)
		return
	}
	if !ok {
		unauthorized(w)
		return
	}
	i := slices.IndexFunc(t.Files, func(f events.FileRef) bool { return f.Name == name })
	if i < 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "File not found"})
		return
	}
	ref := t.Files[i]
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", path.Base(ref.Name)))
	w.Header().Set("Content-Length", fmt.Sprint(ref.Size))
	if _, err := g.files.WriteTo(r.Context(), id, ref, w); err != nil {
		g.log.Warn("download failed", "task_id", id, "file", name, "err", err)
	}
}

// checkDownload checks a request's Basic credentials for a task under a
// password-check slot. A request without credentials costs nothing and
// fails. Otherwise exactly one bcrypt comparison is made: by the cloud's
// credentials query when the task exists, has a password and the
// username is its own; here, against the dummy hash, in every other
// case.
func (g *Gateway) checkDownload(ctx context.Context, r *http.Request, id string) (api.Task, bool, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return api.Task{}, false, nil
	}
	// A download capability is checked first; one that fails goes on as
	// a password would (a task's password may have its shape), so that
	// it costs a bcrypt comparison like any wrong password.
	if _, _, isCap := parseCapability(pass); isCap {
		t, ok, err := g.checkCapability(ctx, id, user, pass)
		if err != nil || ok {
			return t, ok, err
		}
	}
	if err := g.downloads.checks.acquire(ctx); err != nil {
		return api.Task{}, false, err
	}
	defer g.downloads.checks.release()
	var t api.Task
	known := false
	if events.ValidID(id) {
		var err error
		t, err = g.api.Task(ctx, id)
		switch {
		case err == nil:
			known = t.HasPassword && t.Spec.Username != "" && subtle.ConstantTimeCompare([]byte(user), []byte(t.Spec.Username)) == 1
		case fault.KindOf(err) != fault.KindNotFound:
			return api.Task{}, false, err
		}
	}
	if !known {
		wasteComparison(pass)
		return api.Task{}, false, nil
	}
	ok, err := g.api.CheckCredentials(ctx, id, user, pass)
	if fault.KindOf(err) == fault.KindNotFound {
		return api.Task{}, false, nil // deleted meanwhile
	}
	return t, ok, err
}
