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

	"github.com/flmngr/flmngr/commands"
)

// TokenCookie carries the admin token for the console.
const TokenCookie = "flmngr_token"

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

// credential is the token a request carries: a Bearer header, or the
// console's cookie.
func credential(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		t, ok := strings.CutPrefix(h, "Bearer ")
		return strings.TrimSpace(t), ok
	}
	if c, err := r.Cookie(TokenCookie); err == nil {
		return c.Value, true
	}
	return "", false
}

// authorize checks a request's credential: mutating calls always need the
// admin token; reads need it unless reads are open.
func (g *Gateway) authorize(r *http.Request, mutating bool) error {
	if !mutating && g.cfg.OpenReads {
		return nil
	}
	t, ok := credential(r)
	if !ok || t == "" {
		return &commands.Error{Kind: commands.KindUnauthorized, Message: "the admin token is required (Authorization: Bearer <token>)"}
	}
	if subtle.ConstantTimeCompare([]byte(t), []byte(g.token)) != 1 {
		return &commands.Error{Kind: commands.KindForbidden, Message: "the token is not the admin token"}
	}
	return nil
}

// login checks a token and hands the console a cookie carrying it.
func (g *Gateway) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	if err := g.decode(w, r, &body); err != nil {
		g.writeError(w, r, err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(body.Token), []byte(g.token)) != 1 {
		g.writeError(w, r, &commands.Error{Kind: commands.KindForbidden, Message: "the token is not the admin token", Field: "token"})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: g.token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: TokenCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// whoami tells the console whether it may read and write.
func (g *Gateway) whoami(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{
		"admin":      g.authorize(r, true) == nil,
		"open_reads": g.cfg.OpenReads,
	})
}
