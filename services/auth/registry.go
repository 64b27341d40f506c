package auth

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/flmngr/flmngr/events"
	fjs "github.com/flmngr/flmngr/events/jetstream"
)

// Registry keeps an embedded server's identities: fixed ones (the cloud,
// operators) and the client keys recorded in the event log.
type Registry struct {
	fixed []*server.NkeyUser
	log   *slog.Logger

	mu      sync.Mutex
	ns      *server.Server
	base    *server.Options
	clients map[string]string // client id → public key
	seen    uint64            // last key event folded in
	applied uint64            // last key event the server enforces
	pending bool              // keys changed since the last reload
	changed chan struct{}     // closed and replaced on every reload
}

// NewRegistry returns a registry with fixed identities.
func NewRegistry(log *slog.Logger, fixed ...*server.NkeyUser) *Registry {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{fixed: fixed, log: log, clients: map[string]string{}, changed: make(chan struct{})}
}

// Cloud is the cloud services' identity: no restrictions.
func Cloud(publicKey string) *server.NkeyUser { return &server.NkeyUser{Nkey: publicKey} }

// Operator is the operators' identity.
func Operator(publicKey string) *server.NkeyUser {
	return &server.NkeyUser{Nkey: publicKey, Permissions: OperatorPermissions()}
}

// Configure puts the identities on the options a server starts with.
func (r *Registry) Configure(opts *server.Options) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	opts.Nkeys = r.users()
	r.base = opts.Clone()
	return nil
}

// Attach gives the registry the server it reloads.
func (r *Registry) Attach(ns *server.Server) {
	r.mu.Lock()
	r.ns = ns
	r.mu.Unlock()
}

// users lists every identity; callers hold r.mu.
func (r *Registry) users() []*server.NkeyUser {
	users := slices.Clone(r.fixed)
	ids := make([]string, 0, len(r.clients))
	for id := range r.clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		users = append(users, &server.NkeyUser{Nkey: r.clients[id], Permissions: ClientPermissions(id)})
	}
	return users
}

// Apply folds a key event in; it reports whether the keys changed.
func (r *Registry) Apply(e events.Envelope) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = max(r.seen, e.Seq)
	id := e.Aggregate.ID
	switch p := e.Event.(type) {
	case *events.ClientKeyIssued:
		if r.clients[id] == p.PublicKey {
			return false
		}
		r.clients[id] = p.PublicKey
		r.pending = true
		return true
	case *events.ClientKeyRevoked:
		if _, ok := r.clients[id]; !ok {
			return false
		}
		delete(r.clients, id)
		r.pending = true
		return true
	}
	return false
}

// Reload makes the server enforce the current keys. Connections of a
// revoked key are closed by the server.
func (r *Registry) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ns == nil || r.base == nil {
		return fmt.Errorf("auth: no server to reload")
	}
	opts := r.base.Clone()
	opts.Nkeys = r.users()
	if err := r.ns.ReloadOptions(opts); err != nil {
		return fmt.Errorf("auth: reload the server's identities: %w", err)
	}
	r.pending = false
	r.advance()
	return nil
}

// advance marks everything seen as enforced; callers hold r.mu.
func (r *Registry) advance() {
	r.applied = r.seen
	close(r.changed)
	r.changed = make(chan struct{})
}

// Applied is the sequence of the last key event the server enforces.
func (r *Registry) Applied() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied
}

// WaitFor waits until the server enforces the key events up to seq.
func (r *Registry) WaitFor(ctx context.Context, seq uint64) error {
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

// Run follows the key events in the log and reloads the server after
// each burst of them, until ctx ends.
func (r *Registry) Run(ctx context.Context, log *fjs.Log) error {
	dirty := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- log.Follow(ctx, fjs.FollowOptions{Filters: []string{log.TypeFilter(events.ClientKeyIssuedV1), log.TypeFilter(events.ClientKeyRevokedV1)}},
			func(e events.Envelope) error {
				if r.Apply(e) {
					select {
					case dirty <- struct{}{}:
					default:
					}
				} else {
					r.mu.Lock()
					if !r.pending {
						r.advance()
					}
					r.mu.Unlock()
				}
				return nil
			})
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case <-dirty:
			// Let a burst of key events land, then reload once.
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return nil
			}
			if err := r.Reload(); err != nil {
				r.log.Error("reload identities", "err", err)
				continue
			}
			r.mu.Lock()
			n := len(r.clients)
			r.mu.Unlock()
			r.log.Info("client keys enforced", "clients", n, "seq", r.Applied())
		}
	}
}
