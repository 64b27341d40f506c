package eventlog_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
)

// stalledSubscriber subscribes to subject on a raw connection and then
// never reads again, as an agent on a frozen machine would.
func stalledSubscriber(t *testing.T, addr, subject string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	r := bufio.NewReader(conn)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("server greeting %q: %v", line, err)
	}
	if _, err := conn.Write([]byte("CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"stalled\"}\r\nSUB " + subject + " 1\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("waiting for PONG: %v", err)
		}
		if strings.HasPrefix(line, "PONG") {
			return // and never read again
		}
	}
}

// A subscriber that stops reading the live events (the log republishes
// every stored event to core NATS for agents) holds up neither the
// appends nor the consumers of the log: the server buffers for it, then
// cuts it off as a slow consumer.
func TestStalledLiveSubscriberHoldsNothingUp(t *testing.T) {
	ctx := context.Background()
	ns := jstest.Server(t, "")
	log := jstest.Open(t, jstest.Connect(t, ns))
	stalledSubscriber(t, ns.Addr().String(), eventlog.Config{}.Defaults().LivePrefix+".>")

	const total = 3000
	var followed atomic.Int64
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- log.Follow(fctx, eventlog.FollowOptions{}, func(events.Envelope) error { followed.Add(1); return nil })
	}()

	// 4 KiB events: 12 MB in all, far more than the stalled socket holds.
	args := strings.Repeat("x", 4096)
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for i := range total {
		e := env(t, events.Task("t"+strconv.Itoa(i)), &events.TaskCreated{TaskSpec: events.TaskSpec{Host: "h", Port: 1, ServerArguments: args}})
		if _, err := log.Append(actx, 0, e); err != nil {
			t.Fatalf("append %d with a stalled subscriber: %v", i, err)
		}
	}
	took := time.Since(start)
	deadline := time.Now().Add(time.Minute)
	for followed.Load() < total {
		if time.Now().After(deadline) {
			t.Fatalf("a follower of the log got %d of %d events", followed.Load(), total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The subscriber did fall behind: the server holds bytes for it or
	// has cut it off.
	var behind string
	for behind == "" && time.Now().Before(deadline) {
		vz, _ := ns.Varz(nil)
		cz, _ := ns.Connz(&server.ConnzOptions{})
		for _, c := range cz.Conns {
			if c.Name == "stalled" && c.Pending > 1<<20 {
				behind = strconv.Itoa(c.Pending) + " bytes pending for it"
			}
		}
		if vz.SlowConsumers > 0 {
			behind = "cut off as a slow consumer"
		}
		time.Sleep(10 * time.Millisecond)
	}
	if behind == "" {
		t.Fatal("the stalled subscriber never fell behind: the test proves nothing")
	}
	t.Logf("%d appends of 4 KiB in %s (%.0f a second) with a stalled live subscriber (%s); a follower got them all",
		total, took.Round(time.Millisecond), total/took.Seconds(), behind)
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatal(err)
	}
}
