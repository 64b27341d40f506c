// Package jstest starts real embedded JetStream servers for tests: each on
// a random loopback port with its store in the test's temp dir, shut down
// when the test ends.
package jstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
)

// Server starts an embedded server storing under dir (a fresh temp dir
// when empty) and stops it at the end of the test.
func Server(t testing.TB, dir string) *server.Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ns, err := eventlog.StartEmbedded(eventlog.EmbeddedConfig{Dir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// Connect connects to ns and closes the connection at the end of the test.
func Connect(t testing.TB, ns *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Log starts a server and opens the event log on it.
func Log(t testing.TB) *eventlog.Log {
	t.Helper()
	return Open(t, Connect(t, Server(t, "")))
}

// Open opens the event log over nc.
func Open(t testing.TB, nc *nats.Conn) *eventlog.Log {
	t.Helper()
	l, err := eventlog.Open(context.Background(), nc, eventlog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Fill appends the events event(i) makes for i in [from, from+n) as fast
// as JetStream takes them: asynchronous publishes, no expected sequence,
// waiting for the acknowledgements every 2,000 (half the bound nats.go
// puts on unacknowledged publishes). For benchmarks that need a long log.
func Fill(tb testing.TB, log *eventlog.Log, from, n int, event func(i int) (events.Aggregate, events.Payload)) {
	tb.Helper()
	js := log.JetStream()
	at := time.Now()
	for i := from; i < from+n; i++ {
		agg, p := event(i)
		e, err := events.New(fmt.Sprintf("fill-%d", i), "bench", agg, at, p)
		if err != nil {
			tb.Fatal(err)
		}
		subj, err := log.Subject(e)
		if err != nil {
			tb.Fatal(err)
		}
		data, err := events.Encode(e)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := js.PublishMsgAsync(&nats.Msg{Subject: subj, Data: data}); err != nil {
			tb.Fatal(err)
		}
		if (i+1)%2000 == 0 {
			<-js.PublishAsyncComplete()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		tb.Fatal("publishes not acknowledged")
	}
}
