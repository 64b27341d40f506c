package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
)

// bulkKeys is what `client-credentials create --count` is asked for.
type bulkKeys struct {
	pos      []string
	count    int
	prefix   string
	dir      string
	force    bool
	parallel int
}

// maxBulkKeys bounds one bulk issue.
const maxBulkKeys = 1_000_000

// ids are the clients' IDs: prefix and 1 … count, zero-padded to the
// width of count so they sort as numbered.
func (b bulkKeys) ids() []string {
	width := len(strconv.Itoa(b.count))
	ids := make([]string, b.count)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%0*d", b.prefix, width, i+1)
	}
	return ids
}

// credentialsCreateMany issues keys for a fleet: each client's key pair
// is made here, its public key recorded by the cloud (one event each,
// --parallel requests in flight on one connection) and its credentials
// written to DIR/ID.creds. Nothing on the NATS servers is reloaded or
// changed per key: a client key is a JWT signed under the flmngr account,
// and only a revocation changes the account.
func credentialsCreateMany(cf *connFlags, out io.Writer, b bulkKeys) error {
	switch {
	case len(b.pos) > 0:
		return fmt.Errorf("%w: --count names the clients itself (--prefix and a number); drop %q", errUsage, b.pos[0])
	case b.count < 1 || b.count > maxBulkKeys:
		return fmt.Errorf("%w: --count must be 1 to %d, not %d", errUsage, maxBulkKeys, b.count)
	case b.prefix == "":
		return fmt.Errorf("%w: --count needs --prefix, the start of every client's ID (site- gives site-1 …)", errUsage)
	case b.parallel < 1 || b.parallel > 1024:
		return fmt.Errorf("%w: --parallel must be 1 to 1024, not %d", errUsage, b.parallel)
	}
	b.dir = cmp.Or(b.dir, ".")
	ids := b.ids()
	for _, id := range []string{ids[0], ids[len(ids)-1]} {
		if !events.ValidID(id) {
			return fmt.Errorf("%w: --prefix %q makes client IDs like %q; an ID is 1-64 letters, digits, '_' or '-', starting with a letter or digit", errUsage, b.prefix, id)
		}
	}
	if err := os.MkdirAll(b.dir, 0o700); err != nil {
		return err
	}
	if !b.force {
		for _, id := range ids {
			if p := filepath.Join(b.dir, id+".creds"); fileExists(p) {
				return fmt.Errorf("%w: %s exists; pass --force to replace the credentials in %s (their keys stop working)", errUsage, p, b.dir)
			}
		}
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	var next, written atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(b.parallel, len(ids)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				if err := issueOne(ctx, c, ids[i], filepath.Join(b.dir, ids[i]+".creds"), b.force); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				written.Add(1)
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	if first != nil {
		return fmt.Errorf("%d of %d clients' credentials written to %s, then: %w", written.Load(), len(ids), b.dir, first)
	}
	rate := float64(len(ids)) / took.Seconds()
	if cf.json {
		return printJSON(out, map[string]any{"count": len(ids), "first": ids[0], "last": ids[len(ids)-1], "dir": b.dir, "seconds": took.Seconds(), "keys_per_second": rate})
	}
	abs, _ := filepath.Abs(b.dir)
	fmt.Fprintf(out, "%d client keys recorded (%s … %s) in %.1f s, %.0f a second\n  credentials written to %s/ID.creds (mode 0600): copy each to its client and run\n    flmngr client --id ID --creds ID.creds\n",
		len(ids), ids[0], ids[len(ids)-1], took.Seconds(), rate, abs)
	return nil
}

// issueOne makes client id's key pair, has the cloud record it and writes
// the credentials to path.
func issueOne(ctx context.Context, c *api.Client, id, path string, force bool) error {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	r, err := c.IssueClientKey(ctx, commands.IssueClientKey{ClientID: id, PublicKey: auth.PublicKey(kp)})
	if err != nil {
		return fmt.Errorf("client %s: %w", id, err)
	}
	if r.JWT == "" {
		return fmt.Errorf("client %s: key recorded (event %d), but this deployment runs without authentication and issues no credentials", id, r.Seq)
	}
	if err := (auth.Creds{JWT: r.JWT, Key: kp}).Write(path, force); err != nil {
		return fmt.Errorf("client %s: the key is recorded but its credentials could not be written (create them again): %w", id, err)
	}
	return nil
}
