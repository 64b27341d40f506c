package fedavg_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/testkit"
	"github.com/flmngr/flmngr/taskd"
	"github.com/flmngr/flmngr/tasks/fedavg"
)

// lines is a goroutine-safe writer that parses report lines.
type lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lines) messages() []taskd.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []taskd.Message
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		out = append(out, taskd.Parse("stdout", []byte(line)))
	}
	return out
}

func (l *lines) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

// TestFederatedAveragingLearnsMNIST runs a server and two clients on real
// MNIST: accuracy rises every round and reaches 0.85 after three.
func TestFederatedAveragingLearnsMNIST(t *testing.T) {
	if _, err := fedavg.Test(); err != nil {
		t.Fatal(err)
	}
	addr := testkit.FreeAddr(t)
	ctx := context.Background()
	var srv lines
	errs := make(chan error, 3)
	go func() {
		errs <- fedavg.RunServer(ctx, fedavg.ServerConfig{Listen: addr, Rounds: 3, MinClients: 2, Out: &srv})
	}()
	var clients [2]lines
	for i := range clients {
		go func() {
			errs <- fedavg.RunClient(ctx, fedavg.ClientConfig{Server: addr, ClientID: []string{"site-1", "site-2"}[i], Partition: -1, Out: &clients[i]})
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	var accs []float64
	for _, m := range srv.messages() {
		if m.Kind == taskd.KindModel {
			accs = append(accs, m.Metrics["accuracy"])
		}
	}
	t.Logf("accuracy by round: %v", accs)
	if len(accs) != 3 {
		t.Fatalf("%d rounds reported", len(accs))
	}
	for i := 1; i < len(accs); i++ {
		if accs[i] <= accs[i-1] {
			t.Fatalf("accuracy did not rise: %v", accs)
		}
	}
	if accs[2] < 0.85 {
		t.Fatalf("accuracy %.4f after 3 rounds, want at least 0.85", accs[2])
	}
	for _, out := range append([]*lines{&srv}, &clients[0], &clients[1]) {
		msgs := out.messages()
		if !msgs[len(msgs)-1].IsFinished() {
			t.Fatalf("a role did not end with Finished: %+v", msgs[len(msgs)-1])
		}
	}
}

func tiny() fedavg.Dataset {
	d := make(fedavg.Dataset, 40)
	for i := range d {
		d[i] = fedavg.Sample{Index: []uint16{uint16(i)}, Value: []float64{1}, Label: i % 10}
	}
	return d
}

func lastError(t *testing.T, out *lines) string {
	t.Helper()
	msgs := out.messages()
	last := msgs[len(msgs)-1]
	if last.Kind != taskd.KindError {
		t.Fatalf("last line is %s %q, want an error", last.Kind, last.Text)
	}
	return last.Text
}

func TestServerWithoutEnoughClientsErrors(t *testing.T) {
	addr := testkit.FreeAddr(t)
	var srv, cl lines
	done := make(chan error, 1)
	go func() {
		done <- fedavg.RunServer(context.Background(), fedavg.ServerConfig{Listen: addr, MinClients: 2, WaitClients: 500 * time.Millisecond, Test: tiny(), Out: &srv})
	}()
	if err := fedavg.RunClient(context.Background(), fedavg.ClientConfig{Server: addr, ClientID: "site-1", Partition: -1, Train: tiny(), Out: &cl}); err == nil {
		t.Fatal("the lone client finished")
	}
	if err := <-done; err == nil {
		t.Fatal("the server finished without enough clients")
	}
	if msg := lastError(t, &srv); !strings.Contains(msg, "only 1 of 2 clients connected") {
		t.Fatalf("server error %q", msg)
	}
	if msg := lastError(t, &cl); !strings.Contains(msg, "not enough clients") {
		t.Fatalf("client error %q", msg)
	}
}

func TestUnreachableServerErrors(t *testing.T) {
	var cl lines
	start := time.Now()
	err := fedavg.RunClient(context.Background(), fedavg.ClientConfig{Server: testkit.FreeAddr(t), ClientID: "site-1", Partition: -1, Train: tiny(), ConnectTimeout: 300 * time.Millisecond, Out: &cl})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err %v after %s", err, time.Since(start))
	}
	if msg := lastError(t, &cl); !strings.Contains(msg, "cannot reach the server") {
		t.Fatalf("client error %q", msg)
	}
}

func TestLateClientIsRefused(t *testing.T) {
	addr := testkit.FreeAddr(t)
	var srv, first, late lines
	done := make(chan error, 2)
	go func() {
		done <- fedavg.RunServer(context.Background(), fedavg.ServerConfig{Listen: addr, MinClients: 1, Rounds: 50, Test: tiny(), Out: &srv})
	}()
	go func() {
		done <- fedavg.RunClient(context.Background(), fedavg.ClientConfig{Server: addr, ClientID: "site-1", Partition: -1, Train: tiny(), Out: &first})
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !srv.contains("joined") {
		<-tick.C
	}
	err := fedavg.RunClient(context.Background(), fedavg.ClientConfig{Server: addr, ClientID: "site-2", Partition: -1, Train: tiny(), ConnectTimeout: time.Second, Out: &late})
	if err == nil {
		t.Fatal("a late client took part")
	}
	msg := lastError(t, &late)
	if !strings.Contains(msg, "already started or ended") && !strings.Contains(msg, "cannot reach the server") {
		t.Fatalf("late client error %q", msg)
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
