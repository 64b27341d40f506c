package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
)

// Revoker keeps the servers' copy of the flmngr account current: it
// follows the key events of the log and, whenever a key is revoked (or
// replaced by a new one, or an enrolment token is used up), pushes the account JWT with the revoked keys to
// the servers through the system account. The servers close the revoked
// keys' connections at once, all of them, with no reload.
type Revoker struct {
	trust *Trust
	sys   *nats.Conn
	log   *slog.Logger

	mu      sync.Mutex
	keys    map[string]string    // client id → public key
	revoked map[string]time.Time // public key → when
	seen    uint64               // last key event folded in
	applied uint64               // last key event the servers enforce
	dirty   bool                 // revocations changed since the last push
	changed chan struct{}        // closed and replaced when applied moves
	spent   map[string]time.Time // used-up enrolment tokens to revoke after SpentTokenGrace
}

// SpentTokenGrace is how long a used-up enrolment token is left to the
// servers after its last use: the device that used it reads its answer
// on the token's connection.
const SpentTokenGrace = 5 * time.Second

// revokeSpent revokes the used-up tokens whose grace is over and tells
// when the next one's ends (zero: none left).
func (r *Revoker) revokeSpent() (next time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for pub, at := range r.spent {
		if wait := SpentTokenGrace - time.Since(at); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		r.revoked[pub], r.dirty = at, true
		delete(r.spent, pub)
	}
	return next
}

// NewRevoker returns a Revoker that pushes through sys, a connection of
// the system account (Trust.NewSystemUser).
func NewRevoker(t *Trust, sys *nats.Conn, log *slog.Logger) *Revoker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Revoker{trust: t, sys: sys, log: log, keys: map[string]string{}, revoked: map[string]time.Time{}, changed: make(chan struct{}),
		spent: map[string]time.Time{}}
}

// Apply folds a key event in.
func (r *Revoker) Apply(e events.Envelope) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = max(r.seen, e.Seq)
	id := e.Aggregate.ID
	switch p := e.Event.(type) {
	case *events.ClientKeyIssued:
		if old := r.keys[id]; old != "" && old != p.PublicKey {
			r.revoked[old], r.dirty = e.Time, true // replaced: the old key goes
		}
		r.keys[id] = p.PublicKey
	case *events.ClientKeyRevoked:
		r.revoked[p.PublicKey], r.dirty = e.Time, true
		delete(r.keys, id)
	case *events.EnrolmentUsed:
		if p.Remaining <= 0 {
			// A used-up token connects no more, once the device that
			// used it last had its answer (revoking it at once would
			// cut that device's connection before the answer reaches
			// it); the cloud refuses it meanwhile.
			if time.Since(e.Time) >= SpentTokenGrace {
				r.revoked[p.TokenKey], r.dirty = e.Time, true
			} else {
				r.spent[p.TokenKey] = e.Time
			}
		}
	}
	if !r.dirty {
		r.advance()
	}
}

// advance marks everything seen as enforced; callers hold r.mu.
func (r *Revoker) advance() {
	if r.applied == r.seen {
		return
	}
	r.applied = r.seen
	close(r.changed)
	r.changed = make(chan struct{})
}

// Push sends the account JWT with the current revocations to the
// servers and waits for one to acknowledge it.
func (r *Revoker) Push(ctx context.Context) error {
	r.mu.Lock()
	revoked := make(map[string]time.Time, len(r.revoked))
	for k, v := range r.revoked {
		revoked[k] = v
	}
	seen := r.seen
	r.dirty = false
	r.mu.Unlock()
	tok, err := r.trust.AccountJWT(revoked)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	msg, err := r.sys.RequestWithContext(ctx, "$SYS.REQ.CLAIMS.UPDATE", []byte(tok))
	if err == nil {
		err = claimsReplyError(msg.Data)
	}
	if err != nil {
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		return fmt.Errorf("push the account to the servers: %w", err)
	}
	r.mu.Lock()
	if !r.dirty {
		r.seen = max(r.seen, seen)
		r.advance()
	}
	r.mu.Unlock()
	return nil
}

// claimsReplyError reads a server's answer to a claims update.
func claimsReplyError(data []byte) error {
	var reply struct {
		Data *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"data"`
		Error *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &reply); err != nil {
		return fmt.Errorf("bad reply %q", data)
	}
	if reply.Error != nil {
		return fmt.Errorf("%s (%d)", reply.Error.Description, reply.Error.Code)
	}
	return nil
}

// Applied is the sequence of the last key event the servers enforce.
func (r *Revoker) Applied() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied
}

// WaitFor waits until the servers enforce the key events up to seq.
func (r *Revoker) WaitFor(ctx context.Context, seq uint64) error {
	for {
		r.mu.Lock()
		applied, changed := r.applied, r.changed
		r.mu.Unlock()
		if applied >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Run follows the key events in the log and pushes the account after each
// burst of revocations, until ctx ends. The first push, once the log is
// read, also brings the servers the permissions of this version.
func (r *Revoker) Run(ctx context.Context, log *eventlog.Log) error {
	filters := []string{log.TypeFilter(events.ClientKeyIssuedV1), log.TypeFilter(events.ClientKeyRevokedV1), log.TypeFilter(events.EnrolmentUsedV1)}
	// The key events so far, read again until the log answers (a cloud
	// may start while its cluster elects leaders).
	var last uint64
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		// Follow on from where the replay ended: a key issued after it
		// but before a fresh read of the stream's end would be missed,
		// and its WaitFor would hang.
		var err error
		last, err = log.Replay(ctx, eventlog.FollowOptions{Filters: filters}, func(e events.Envelope) error { r.Apply(e); return nil })
		if err == nil {
			break
		}
		r.log.Warn("read the key events; trying again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	r.mu.Lock()
	r.dirty = true
	r.mu.Unlock()
	dirty := make(chan struct{}, 1)
	dirty <- struct{}{}
	done := make(chan error, 1)
	go func() {
		done <- log.Follow(ctx, eventlog.FollowOptions{From: last + 1, Filters: filters}, func(e events.Envelope) error {
			r.Apply(e)
			r.mu.Lock()
			d := r.dirty || len(r.spent) > 0
			r.mu.Unlock()
			if d {
				select {
				case dirty <- struct{}{}:
				default:
				}
			}
			return nil
		})
	}()
	var retry <-chan time.Time // a failed push is tried again
	spent := time.NewTimer(time.Hour)
	spent.Stop()
	defer spent.Stop()
	for {
		select {
		case <-ctx.Done():
			<-done
			return nil
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-dirty:
		case <-retry:
		case <-spent.C:
		}
		retry = nil
		if next := r.revokeSpent(); next > 0 {
			spent.Reset(next)
		}
		r.mu.Lock()
		d := r.dirty
		r.mu.Unlock()
		if !d {
			continue
		}
		if err := r.Push(ctx); err != nil {
			if ctx.Err() != nil {
				continue
			}
			r.log.Error("push account", "err", err)
			retry = time.After(time.Second)
			continue
		}
		r.mu.Lock()
		n := len(r.revoked)
		r.mu.Unlock()
		r.log.Debug("account pushed to the servers", "revoked_keys", n, "seq", r.Applied())
	}
}
