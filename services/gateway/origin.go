package gateway

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/flmngr/flmngr/commands/fault"
)

// A browser sends the console's cookie with any request to the gateway,
// whoever's page makes it, and SameSite=Strict leaves out only other
// sites: another port or a sibling host is the same site. So a write
// that the cookie authorizes must say where it comes from (Origin, or
// Referer when there is none) and that is the gateway's own origin; and
// its body must be of the type its endpoint takes, JSON or a multipart
// upload, which a page of another origin cannot send without a CORS
// preflight that the REST API never grants.

// ownOrigin is the origin the request was addressed to.
func ownOrigin(r *http.Request) string {
	scheme := "http"
	if secure(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// originOf is the origin a request says it comes from, "" when it says
// nothing.
func originOf(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		return o
	}
	if ref := r.Header.Get("Referer"); ref != "" {
		u, err := url.Parse(ref)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return "null"
		}
		return u.Scheme + "://" + u.Host
	}
	return ""
}

func forbidden(format string, args ...any) error {
	return &fault.Error{Kind: fault.KindForbidden, Message: fmt.Sprintf(format, args...)}
}

// checkCookieWrite refuses a cookie-authorized write from another origin
// or with a body its endpoint does not take.
func checkCookieWrite(r *http.Request, a access) error {
	from := originOf(r)
	if from == "" {
		return forbidden("a write with the console's cookie must carry an Origin or Referer header")
	}
	if !strings.EqualFold(from, ownOrigin(r)) {
		return forbidden("a write with the console's cookie must come from %s, not %s", ownOrigin(r), from)
	}
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	switch {
	case a == uploading && mt != "multipart/form-data":
		return forbidden("an upload with the console's cookie must be multipart/form-data")
	case a != uploading && (ct != "" || r.ContentLength != 0) && mt != "application/json":
		return forbidden("a write with the console's cookie must send Content-Type: application/json")
	}
	return nil
}
