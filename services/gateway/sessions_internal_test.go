package gateway

import (
	"testing"
	"time"
)

// TestSessionsEndAndAreBounded: a session ends after its time; past
// maxSessions a login ends the session closest to its end, so memory
// stays bounded however often one logs in.
func TestSessionsEndAndAreBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newSessions()
	s.now = func() time.Time { return now }
	first, err := s.create()
	if err != nil || !s.valid(first) || s.valid("") || s.valid(first+"x") {
		t.Fatalf("a new session: %v", err)
	}
	now = now.Add(sessionTTL)
	if s.valid(first) {
		t.Fatal("a session outlived its time")
	}
	oldest, _ := s.create()
	now = now.Add(time.Minute)
	for range maxSessions + 10 {
		if _, err := s.create(); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.expires) > maxSessions {
		t.Fatalf("%d sessions kept, at most %d wanted", len(s.expires), maxSessions)
	}
	if s.valid(oldest) {
		t.Fatal("the session closest to its end survived past the bound")
	}
	id, _ := s.create()
	s.revoke(id)
	if s.valid(id) {
		t.Fatal("a revoked session is valid")
	}
}
