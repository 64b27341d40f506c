package testkit_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/testkit"
)

func TestFreePortsAreDistinctAndFree(t *testing.T) {
	ports := testkit.FreePorts(t, 5)
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d twice in %v", p, ports)
		}
		seen[p] = true
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
}

func TestPollReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	err := testkit.Poll(context.Background(), 10*time.Second, func() error {
		if calls.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || calls.Load() != 3 {
		t.Fatalf("Poll: %v after %d calls, want nil after 3", err, calls.Load())
	}
}

func TestPollReturnsTheLastErrorAtTheDeadline(t *testing.T) {
	n := 0
	err := testkit.Poll(context.Background(), 50*time.Millisecond, func() error { n++; return errors.New("try " + strconv.Itoa(n)) })
	if err == nil || err.Error() != "try "+strconv.Itoa(n) {
		t.Fatalf("Poll: %v, want the last error (try %d)", err, n)
	}
}

func TestPollEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := testkit.Poll(ctx, time.Minute, func() error { return errors.New("never") }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Poll: %v, want context.Canceled", err)
	}
}

func TestNeverLooksOverTheWholeWindow(t *testing.T) {
	start := time.Now()
	var calls atomic.Int32
	if err := testkit.Never(100*time.Millisecond, func() error { calls.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 100*time.Millisecond || calls.Load() < 2 {
		t.Fatalf("looked %d times in %s", calls.Load(), time.Since(start))
	}
	calls.Store(0)
	err := testkit.Never(time.Minute, func() error {
		if calls.Add(1) == 3 {
			return errors.New("it happened")
		}
		return nil
	})
	if err == nil || calls.Load() != 3 {
		t.Fatalf("Never: %v after %d looks, want the third look's error", err, calls.Load())
	}
}
