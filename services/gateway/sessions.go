package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// SessionCookie carries a console session's id: a random value the
// gateway hands out at login and forgets at logout, never the admin
// token itself.
const SessionCookie = "flmngr_session"

// legacyCookie is the cookie that carried the admin token itself; it
// authorizes nothing any more and is cleared at login and logout.
const legacyCookie = "flmngr_token"

// sessionTTL is how long a console session lasts after its login.
const sessionTTL = 12 * time.Hour

// maxSessions bounds the sessions kept; past it a login ends the session
// closest to its end.
const maxSessions = 1000

// sessions are the console's sessions, in memory: a restart signs every
// console out. They are kept by the SHA-256 of their id, so that a map
// lookup's timing tells nothing about the ids.
type sessions struct {
	mu      sync.Mutex
	expires map[[32]byte]time.Time
	now     func() time.Time
}

func newSessions() *sessions {
	return &sessions{expires: map[[32]byte]time.Time{}, now: time.Now}
}

// create starts a session and returns its id: 32 random bytes.
func (s *sessions) create() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(raw)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.expires) >= maxSessions {
		s.evict(now)
	}
	s.expires[sha256.Sum256([]byte(id))] = now.Add(sessionTTL)
	return id, nil
}

// evict drops the ended sessions and, when none had ended, the one
// closest to its end; callers hold s.mu.
func (s *sessions) evict(now time.Time) {
	var first [32]byte
	var firstEnd time.Time
	for k, end := range s.expires {
		if !now.Before(end) {
			delete(s.expires, k)
			continue
		}
		if firstEnd.IsZero() || end.Before(firstEnd) {
			first, firstEnd = k, end
		}
	}
	if len(s.expires) >= maxSessions {
		delete(s.expires, first)
	}
}

// valid reports whether id is a live session.
func (s *sessions) valid(id string) bool {
	if id == "" {
		return false
	}
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	end, ok := s.expires[k]
	if ok && !s.now().Before(end) {
		delete(s.expires, k)
		return false
	}
	return ok
}

// revoke ends a session.
func (s *sessions) revoke(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.expires, sha256.Sum256([]byte(id)))
}
