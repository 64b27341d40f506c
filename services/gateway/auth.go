package gateway

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
)

// LoadToken reads the admin token from path, creating it (0600) on first
// use; created reports a new token, which the caller shows once.
func LoadToken(path string) (token string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		token = strings.TrimSpace(string(b))
		if len(token) < 32 {
			return "", false, fmt.Errorf("admin token in %s is too short", path)
		}
		return token, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", false, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", false, err
	}
	token = hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", false, err
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", false, err
	}
	return token, true, f.Close()
}

// authorize checks a request's credential for an access level: the
// admin token as a Bearer header, or the console's session cookie. Reads
// need neither when reads are open. A write authorized by the cookie
// must also come from the console's own origin with the body type its
// endpoint takes (checkCookieWrite): a browser sends the cookie along
// with requests other sites make it send.
func (g *Gateway) authorize(r *http.Request, a access) error {
	if a == read && g.cfg.OpenReads {
		return nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		t, ok := strings.CutPrefix(h, "Bearer ")
		if t = strings.TrimSpace(t); !ok || t == "" {
			return errTokenRequired()
		}
		if subtle.ConstantTimeCompare([]byte(t), []byte(g.token)) != 1 {
			return &fault.Error{Kind: fault.KindForbidden, Message: "the token is not the admin token"}
		}
		return nil
	}
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return errTokenRequired()
	}
	if !g.sessions.valid(c.Value) {
		return &fault.Error{Kind: fault.KindUnauthorized, Message: "the console session has ended: sign in again"}
	}
	if a >= write {
		return checkCookieWrite(r, a)
	}
	return nil
}

func errTokenRequired() error {
	return &fault.Error{Kind: fault.KindUnauthorized, Message: "the admin token is required (Authorization: Bearer <token>)"}
}

// isAdmin reports whether a request carries the admin token or a live
// console session, whatever it asks for.
func (g *Gateway) isAdmin(r *http.Request) bool {
	if h := r.Header.Get("Authorization"); h != "" {
		t, ok := strings.CutPrefix(h, "Bearer ")
		return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(t)), []byte(g.token)) == 1
	}
	c, err := r.Cookie(SessionCookie)
	return err == nil && g.sessions.valid(c.Value)
}

// secure reports whether the request came over TLS, to the gateway or
// to a proxy in front of it.
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

// login checks a token and starts a console session, whose id the
// cookie carries.
func (g *Gateway) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	if err := g.decode(w, r, &body); err != nil {
		g.writeError(w, r, err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(body.Token), []byte(g.token)) != 1 {
		g.writeError(w, r, &fault.Error{Kind: fault.KindForbidden, Message: "the token is not the admin token", Field: "token"})
		return
	}
	id, err := g.sessions.create()
	if err != nil {
		g.writeError(w, r, fault.Internal(err, "session id"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
	http.SetCookie(w, &http.Cookie{Name: legacyCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
	w.WriteHeader(http.StatusNoContent)
}

// logout ends the request's console session, so that its cookie
// authorizes nothing any more, and clears the cookie. A live session is
// ended only from the console's own origin.
func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil && g.sessions.valid(c.Value) {
		if err := checkCookieWrite(r, write); err != nil {
			g.writeError(w, r, err)
			return
		}
		g.sessions.revoke(c.Value)
	}
	for _, name := range []string{SessionCookie, legacyCookie} {
		http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r)})
	}
	w.WriteHeader(http.StatusNoContent)
}

// whoami tells the console whether it may read and write.
func (g *Gateway) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{
		"admin":      g.isAdmin(r),
		"open_reads": g.cfg.OpenReads,
	})
}
