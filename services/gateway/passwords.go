package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
)

// passwordChecks bounds the bcrypt comparisons the gateway causes at
// once. A bcrypt comparison is ~65 ms of one core by design; without a
// bound, a flood of bad passwords takes every core and starves the REST
// API and the NATS connection's heartbeats. Requests beyond the slots
// wait briefly in a bounded queue, then are refused so that clients back
// off instead of piling up.
type passwordChecks struct {
	slots    chan struct{}
	queued   atomic.Int64
	maxQueue int64
	maxWait  time.Duration
}

// defaultPasswordChecks is how many comparisons run at once: half the
// cores, at least one. bcrypt is pure CPU, so more slots than cores only
// queue inside the scheduler; half of them leaves the other half to
// everything else (on a 2-core machine, one core hashes and one serves).
// The throughput is then ~15 checks per second per slot, which the
// download rate limits stay well within for honest clients.
func defaultPasswordChecks() int { return max(1, runtime.GOMAXPROCS(0)/2) }

func newPasswordChecks(n int) *passwordChecks {
	if n <= 0 {
		n = defaultPasswordChecks()
	}
	// The queue holds what the slots get through in about maxWait: a
	// waiter further back would time out anyway.
	return &passwordChecks{slots: make(chan struct{}, n), maxQueue: int64(16 * n), maxWait: time.Second}
}

// errBusy is the refusal of a check that found no slot in time.
func errBusy() error {
	return &fault.Error{Kind: fault.KindUnavailable, Message: "too many password checks at once; retry later", RetryAfterMS: 1000}
}

// acquire takes a slot, waiting at most maxWait behind at most maxQueue
// others; release gives it back.
func (p *passwordChecks) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	if p.queued.Add(1) > p.maxQueue {
		p.queued.Add(-1)
		return errBusy()
	}
	defer p.queued.Add(-1)
	t := time.NewTimer(p.maxWait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errBusy()
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *passwordChecks) release() { <-p.slots }

// dummyHash is a bcrypt hash, at the cost real task passwords are
// hashed with, of a random password nobody knows: a request for an
// unknown task or with a wrong username is compared with it, so that it
// costs what a wrong password costs and answers in the same time.
var dummyHash = sync.OnceValue(func() []byte {
	raw := make([]byte, 24)
	_, _ = rand.Read(raw)
	h, err := commands.HashPassword(hex.EncodeToString(raw))
	if err != nil {
		panic("gateway: dummy password hash: " + err.Error())
	}
	return []byte(h)
})

// wasteComparison does the work of one failed password check.
func wasteComparison(password string) {
	_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
}
