package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"sync"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/api"
)

// The original's edge agent downloads a task's files with HTTP Basic
// auth, using the username and password of the offer it got from
// rpc_exec_client_requesting_task. A task's real password never leaves
// the cloud (it is kept only as a bcrypt hash), so the offer's password
// is a download capability instead: a random secret minted for that
// client, task, run and spec, of the form <client>.<id>.<secret>.
//
//   - Only its SHA-256 is recorded, in a client.download_capability_issued
//     event; the secret exists in the reply to the client and in this
//     gateway's memory, so that the client's next requests get the same
//     one instead of a new event each time.
//   - /download accepts it, with the task's username, while the client is
//     offered that run of that spec: it lapses when the run ends, the task
//     changes or the client stops matching, and it can be revoked
//     (DELETE /api/v1/clients/{id}/capabilities/{task}).
//   - It opens that task only: another client's capability, or this
//     client's for another task, is refused as a wrong password is.

// capabilityKey names what a capability opens.
type capabilityKey struct {
	client, task, run string
	spec              uint64
}

type mintedCapability struct {
	id, secret string
}

// maxCachedCapabilities bounds the secrets kept to answer again; when
// full, the cache is emptied (clients then get new capabilities).
const maxCachedCapabilities = 100_000

// capabilities are the secrets this gateway minted and may give again.
type capabilities struct {
	mu sync.Mutex
	m  map[capabilityKey]mintedCapability
}

func newCapabilities() *capabilities {
	return &capabilities{m: map[capabilityKey]mintedCapability{}}
}

// capabilityHash is how a capability is recorded.
func capabilityHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// parseCapability splits a capability into its client and id; ok is
// false for anything of another shape (a task's real password).
func parseCapability(s string) (client, id string, ok bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || !events.ValidID(parts[0]) || len(parts[1]) != 16 || len(parts[2]) != 64 {
		return "", "", false
	}
	return parts[0], parts[1], true
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// capabilityFor returns the capability for a client's offer: the one
// this gateway gave before while it is still live, else a new one,
// recorded. It returns "" when the offer went away meanwhile.
func (g *Gateway) capabilityFor(ctx context.Context, u projections.ClientView, o events.Offer) (string, error) {
	key := capabilityKey{client: u.ID, task: o.TaskID, run: o.Run, spec: o.SpecSeq}
	g.caps.mu.Lock()
	c, ok := g.caps.m[key]
	g.caps.mu.Unlock()
	if ok {
		if k, live := u.Capability(o.TaskID, c.id); live && u.Live(k) {
			return c.secret, nil
		}
	}
	c.id = randomHex(8)
	c.secret = u.ID + "." + c.id + "." + randomHex(32)
	_, err := g.api.IssueDownloadCapability(ctx, commands.IssueDownloadCapability{ClientID: u.ID, ID: c.id, TaskID: o.TaskID, Run: o.Run,
		SpecSeq: o.SpecSeq, SHA256: capabilityHash(c.secret)})
	if err != nil {
		if k := fault.KindOf(err); k == fault.KindConflict || k == fault.KindNotFound {
			return "", nil
		}
		return "", err
	}
	g.caps.mu.Lock()
	if len(g.caps.m) >= maxCachedCapabilities {
		clear(g.caps.m)
	}
	g.caps.m[key] = c
	g.caps.mu.Unlock()
	return c.secret, nil
}

// unlessNotFound is err, or nil when err says that what was read does not
// exist: a capability for it opens nothing, which is no error.
func unlessNotFound(err error) error {
	if fault.KindOf(err) == fault.KindNotFound {
		return nil
	}
	return err
}

// checkCapability reports whether a capability, with the task's
// username, opens task id's files now.
func (g *Gateway) checkCapability(ctx context.Context, id, user, secret string) (api.Task, bool, error) {
	client, capID, ok := parseCapability(secret)
	if !ok || !events.ValidID(id) {
		return api.Task{}, false, nil
	}
	t, err := g.api.Task(ctx, id)
	if err != nil {
		return api.Task{}, false, unlessNotFound(err)
	}
	if subtle.ConstantTimeCompare([]byte(user), []byte(t.Spec.Username)) != 1 {
		return api.Task{}, false, nil
	}
	u, err := g.api.User(ctx, client)
	if err != nil {
		return api.Task{}, false, unlessNotFound(err)
	}
	c, ok := u.Capability(id, capID)
	if !ok || !u.Live(c) {
		return api.Task{}, false, nil
	}
	return t, subtle.ConstantTimeCompare([]byte(capabilityHash(secret)), []byte(c.SHA256)) == 1, nil
}
