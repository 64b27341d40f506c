package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/nats-io/nats.go"
)

// Refusals turns the server's permission refusals on a connection into
// errors of the requests they concern, at once: without it a refused
// request waits for its timeout and says nothing of why.
type Refusals struct {
	identity string

	mu      sync.Mutex
	waiting map[*refusalWait]struct{}
}

type refusalWait struct {
	subject string
	cancel  context.CancelCauseFunc
}

// NewRefusals returns Refusals for a connection made with identity (a
// description for people: `"operator" (operator.creds)`).
func NewRefusals(identity string) *Refusals {
	return &Refusals{identity: identity, waiting: map[*refusalWait]struct{}{}}
}

// Handler is the connection's error handler; it passes every error on to
// next (when set).
func (r *Refusals) Handler(next nats.ErrHandler) nats.ErrHandler {
	return func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if op, subject, ok := parseViolation(err); ok {
			r.refused(op, subject)
		}
		if next != nil {
			next(nc, sub, err)
		}
	}
}

// parseViolation reads `nats: permissions violation for publish to "x"`.
func parseViolation(err error) (op, subject string, ok bool) {
	if err == nil || !errors.Is(err, nats.ErrPermissionViolation) && !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
		return "", "", false
	}
	msg := err.Error()
	i := strings.Index(msg, `"`)
	j := strings.LastIndex(msg, `"`)
	if i < 0 || j <= i {
		return "", "", false
	}
	op = "publish to"
	if strings.Contains(strings.ToLower(msg), "subscription") {
		op = "subscribe to"
	}
	return op, msg[i+1 : j], true
}

func (r *Refusals) refused(op, subject string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for w := range r.waiting {
		// A refused subscription is the inbox replies come to: every
		// request waits in vain.
		if op == "subscribe to" || w.subject == subject {
			msg := fmt.Sprintf("the NATS server refused it: the identity %s may not %s %s", r.identity, op, subject)
			if op == "subscribe to" && strings.HasPrefix(subject, "_INBOX.") {
				msg += " (where the replies to " + w.subject + " come: these are not the credentials of this kind of caller)"
			}
			w.cancel(&fault.Error{Kind: fault.KindForbidden, Message: msg})
		}
	}
}

// watch returns a context that ends, with the refusal as its cause, when
// the server refuses a publish to subject; stop forgets it.
func (r *Refusals) watch(ctx context.Context, subject string) (context.Context, func()) {
	if r == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	w := &refusalWait{subject: subject, cancel: cancel}
	r.mu.Lock()
	r.waiting[w] = struct{}{}
	r.mu.Unlock()
	return ctx, func() {
		r.mu.Lock()
		delete(r.waiting, w)
		r.mu.Unlock()
		cancel(nil)
	}
}
