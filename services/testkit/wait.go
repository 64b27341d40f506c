package testkit

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Interval is how often Poll looks again.
const Interval = 20 * time.Millisecond

// Poll calls cond until it returns nil, the timeout passes or ctx ends;
// it returns nil, cond's last error, or ctx's error.
func Poll(ctx context.Context, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitFor polls cond until it returns nil; when the timeout passes first
// the test fails with what it waited for and cond's last error.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := Poll(context.Background(), timeout, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Until polls cond until it holds or the timeout passes, and reports
// whether it held.
func Until(timeout time.Duration, cond func() bool) bool {
	return Poll(context.Background(), timeout, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}) == nil
}

var errNotYet = fmt.Errorf("not yet")

// Never checks that cond stays false for the whole window, looking at
// every Interval; it returns an error naming the first time it held.
func Never(window time.Duration, cond func() error) error {
	start := time.Now()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		if err := cond(); err != nil {
			return fmt.Errorf("after %s: %w", time.Since(start).Round(time.Millisecond), err)
		}
		if time.Since(start) >= window {
			return nil
		}
		<-tick.C
	}
}
