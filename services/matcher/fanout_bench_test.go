package matcher_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/testkit"
)

// BenchmarkFanOut starts a task matching N simulated clients against a
// cloud running as its own `flmngr up` process (the built binary, real
// ports, identities on) and measures how long after the start request
// every client has received its offer, and the cloud's peak resident
// memory (VmHWM). Before the first start it issues every client a key
// through the operator API (keys/s) and has every client report its
// attributes (reports/s).
//
// How the simulated clients connect, honestly: 100,000 TCP connections do
// not fit on the machines this runs on, so a sample of clients (the first
// fanOutOwnConns) connect as a real agent does, each on its own
// connection with the credentials issued for it, and the others share
// fanOutShards connections. A shared connection cannot carry 100,000
// identities (a NATS connection has one), so it is authenticated as a
// load generator that this benchmark signs with the deployment's account
// key: allowed exactly the union of what the clients' identities allow
// (publish on flmngr.client.*.> and flmngr.hb.*, subscribe to
// _INBOX.client.> and flmngr.live.client.*.>), nothing of the cloud's.
// Every simulated client still uses only its own subjects: it reports on
// flmngr.client.<id>.report with its reply under its own inbox prefix
// (_INBOX.client.<id>.…, the only place the cloud answers it), and
// subscribes to its own live offers subject,
// flmngr.live.client.<id>.offers_changed.v1. What the sharing does not
// exercise is the NATS server checking 100,000 JWTs and holding 100,000
// connections. The simulated clients send no heartbeats and run nothing:
// they register, then follow their offers.
//
// The 100,000-client case is skipped with -short.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run("clients="+strconv.Itoa(n), func(b *testing.B) {
			if testing.Short() && n > 10_000 {
				b.Skip("100,000 clients skipped in -short mode")
			}
			fanOut(b, n)
		})
	}
}

const (
	fanOutShards   = 16  // connections the other simulated clients share
	fanOutOwnConns = 200 // clients on their own connection, with their own credentials
	fanOutInflight = 64  // requests in flight while keys are issued and attributes reported
)

func fanOut(b *testing.B, n int) {
	bin := testkit.Binary(b)
	addr := testkit.FreeAddr(b)
	data := filepath.Join(b.TempDir(), "data")
	up := exec.Command(bin, "up", "--data", data, "--listen", addr, "--http", "", "--log-level", "warn")
	up.Stderr = os.Stderr
	if err := up.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = up.Process.Kill(); _ = up.Wait() })
	url := "nats://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)

	// The operator: as the CLI connects, with operator.creds.
	creds := filepath.Join(data, "operator.creds")
	poll(b, func() bool { _, err := os.Stat(creds); return err == nil })
	opOpts, err := auth.OperatorOptions(creds)
	if err != nil {
		b.Fatal(err)
	}
	op := api.NewClient(connect(b, url, opOpts...), time.Minute)
	poll(b, func() bool { _, err := op.Status(ctx); return err == nil })

	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("sim%06d", i)
	}

	// Keys for every client.
	own := make([]auth.Creds, min(n, fanOutOwnConns))
	t0 := time.Now()
	parallel(b, n, func(i int) error {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return err
		}
		r, err := op.IssueClientKey(ctx, commands.IssueClientKey{ClientID: ids[i], PublicKey: auth.PublicKey(kp)})
		if err == nil && r.JWT == "" {
			err = fmt.Errorf("no JWT issued for %s", ids[i])
		}
		if err == nil && i < len(own) {
			own[i] = auth.Creds{JWT: r.JWT, Key: kp}
		}
		return err
	})
	keysTook := time.Since(t0)
	b.Logf("%d keys issued in %.1f s", n, keysTook.Seconds())

	// The clients' connections.
	gen := loadGenerator(b, data)
	sims := make([]*simConn, 0, len(own)+fanOutShards)
	for i := range own {
		sims = append(sims, newSimConn(b, connect(b, url, own[i].Option(), nats.CustomInboxPrefix(auth.InboxPrefix(ids[i]))), len(sims), auth.InboxPrefix(ids[i])))
	}
	for range fanOutShards {
		sims = append(sims, newSimConn(b, connect(b, url, gen.Option()), len(sims), auth.InboxPrefix("*")))
	}
	connOf := func(i int) *simConn {
		if i < len(own) {
			return sims[i]
		}
		return sims[len(own)+i%fanOutShards]
	}

	// Offers: when each client was last offered the task, and withdrawn.
	var mu sync.Mutex
	var offered, withdrawn int
	offeredAt := make([]time.Time, n)
	isOffered := make([]bool, n)
	allOffered, allWithdrawn := make(chan struct{}), make(chan struct{})
	onOffers := func(i int, e events.Envelope) {
		on := len(e.Event.(*events.ClientOffersChanged).Offers) > 0
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case on && !isOffered[i]:
			isOffered[i], offeredAt[i] = true, now
			if offered++; offered == n {
				close(allOffered)
			}
		case !on && isOffered[i]:
			isOffered[i] = false
			if withdrawn++; withdrawn == n {
				close(allWithdrawn)
			}
		}
	}
	for i, id := range ids {
		if err := connOf(i).follow(id, func(e events.Envelope) { onOffers(i, e) }); err != nil {
			b.Fatal(err)
		}
	}
	for _, s := range sims {
		if err := s.nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}

	// Every client reports its attributes.
	sensors := []string{"camera"}
	t0 = time.Now()
	parallel(b, n, func(i int) error {
		return connOf(i).report(ctx, ids[i], commands.ReportClientInfo{ClientInfo: commands.ClientInfo{Sensors: &sensors}, Register: true})
	})
	reportsTook := time.Since(t0)
	b.Logf("%d clients reported in %.1f s", n, reportsTook.Seconds())
	poll(b, func() bool { s, err := op.Status(ctx); return err == nil && s.Clients == n })
	if _, err := op.CreateTask(ctx, commands.CreateTask{TaskID: "wide", Host: "localhost", Port: 8080, SelectionCriteria: `"camera" in sensors`,
		ServerCommand: []string{"sleep", "600"}}); err != nil {
		b.Fatal(err)
	}
	wait := func(ch chan struct{}, what string) {
		select {
		case <-ch:
		case <-time.After(5 * time.Minute):
			mu.Lock()
			defer mu.Unlock()
			b.Fatalf("%s: %d offered, %d withdrawn of %d clients", what, offered, withdrawn, n)
		}
	}
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, err := op.StartTask(ctx, commands.StartTask{TaskID: "wide"}); err != nil {
			b.Fatal(err)
		}
		wait(allOffered, "start")
		mu.Lock()
		took = append(took, slices.MaxFunc(offeredAt, func(a, b time.Time) int { return a.Compare(b) }).Sub(start))
		mu.Unlock()
		if _, err := op.StopTask(ctx, "wide"); err != nil {
			b.Fatal(err)
		}
		wait(allWithdrawn, "stop")
		mu.Lock()
		offered, withdrawn = 0, 0
		allOffered, allWithdrawn = make(chan struct{}), make(chan struct{})
		mu.Unlock()
	}
	slices.Sort(took)
	median := took[len(took)/2]
	hwm, rss := procMemory(b, up.Process.Pid)
	b.ReportMetric(median.Seconds(), "all-offered-s")
	b.ReportMetric(float64(hwm)/(1<<20), "cloud-peak-MiB")
	b.ReportMetric(float64(n)/keysTook.Seconds(), "keys/s")
	b.ReportMetric(float64(n)/reportsTook.Seconds(), "reports/s")
	b.Logf("%d clients (%d on their own connection, the others on %d shared), %d starts: all offered %.3f s after the start request (median; slowest %.3f s); "+
		"cloud peak RSS %d MiB (now %d MiB); %d keys issued at %.0f/s; %d attribute reports at %.0f/s; load average %s",
		n, len(own), fanOutShards, len(took), median.Seconds(), took[len(took)-1].Seconds(), hwm>>20, rss>>20,
		n, float64(n)/keysTook.Seconds(), n, float64(n)/reportsTook.Seconds(), loadAverage())
}

// loadGenerator signs, with the deployment's account key, the identity
// the shared connections use: what the clients' identities allow
// together, nothing more.
func loadGenerator(b *testing.B, data string) auth.Creds {
	b.Helper()
	trust, created, err := auth.LoadOrCreateTrust(auth.KeysFile(data))
	if err != nil || created {
		b.Fatalf("trust material of the cloud: created %v, %v", created, err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		b.Fatal(err)
	}
	uc := jwt.NewUserClaims(auth.PublicKey(kp))
	uc.Name = "fan-out load generator"
	uc.Pub.Allow.Add(api.ClientPrefix+".*.>", "flmngr.hb.*")
	uc.Sub.Allow.Add(auth.InboxPrefix("*")+".>", "flmngr.live.client.*.>")
	tok, err := uc.Encode(trust.Account)
	if err != nil {
		b.Fatal(err)
	}
	return auth.Creds{JWT: tok, Key: kp}
}

// simConn is a connection some simulated clients share: it sends each
// client's requests with replies under that client's inbox prefix and
// hands each its own live offers.
type simConn struct {
	nc      *nats.Conn
	tag     string
	next    atomic.Uint64
	mu      sync.Mutex
	waiting map[string]chan *nats.Msg
	live    chan *nats.Msg
	follows sync.Map // live subject → func(events.Envelope)
}

func newSimConn(b *testing.B, nc *nats.Conn, i int, inboxes string) *simConn {
	s := &simConn{nc: nc, tag: "s" + strconv.Itoa(i), waiting: map[string]chan *nats.Msg{}, live: make(chan *nats.Msg, 65536)}
	// Replies to this connection's requests, for whichever client sent
	// them: _INBOX.client.<id>.<tag>.<n> (inboxes is the client's own
	// prefix on its own connection, every client's on a shared one).
	if _, err := nc.Subscribe(inboxes+"."+s.tag+".*", func(m *nats.Msg) {
		s.mu.Lock()
		ch := s.waiting[m.Subject]
		delete(s.waiting, m.Subject)
		s.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range s.live {
			l, err := eventlog.ParseLive(m)
			if err != nil {
				continue
			}
			if fn, ok := s.follows.Load(m.Subject); ok {
				fn.(func(events.Envelope))(l.Event)
			}
		}
	}()
	b.Cleanup(func() { nc.Close(); close(s.live); <-done })
	return s
}

// follow subscribes to client id's own live offers.
func (s *simConn) follow(id string, fn func(events.Envelope)) error {
	_, name, _ := strings.Cut(events.ClientOffersChangedV1, ".")
	subject := eventlog.Config{}.Defaults().LivePrefix + "." + events.KindClient + "." + id + "." + name
	s.follows.Store(subject, fn)
	_, err := s.nc.ChanSubscribe(subject, s.live)
	return err
}

// report sends client id's attributes as its agent does.
func (s *simConn) report(ctx context.Context, id string, r commands.ReportClientInfo) error {
	r.ClientID = id
	body, err := json.Marshal(r)
	if err != nil {
		return err
	}
	reply := auth.InboxPrefix(id) + "." + s.tag + "." + strconv.FormatUint(s.next.Add(1), 10)
	ch := make(chan *nats.Msg, 1)
	s.mu.Lock()
	s.waiting[reply] = ch
	s.mu.Unlock()
	m := nats.NewMsg(api.ClientSubject(id, api.VerbReport))
	m.Reply, m.Data = reply, body
	m.Header.Set(api.RequestedAtHeader, time.Now().UTC().Format(time.RFC3339Nano))
	if err := s.nc.PublishMsg(m); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	select {
	case m := <-ch:
		if code := m.Header.Get(micro.ErrorCodeHeader); code != "" {
			e := &fault.Error{}
			if json.Unmarshal(m.Data, e) != nil || e.Kind == "" {
				return fmt.Errorf("report of %s refused: %s %s", id, code, m.Data)
			}
			return e
		}
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.waiting, reply)
		s.mu.Unlock()
		return fmt.Errorf("report of %s: %w", id, ctx.Err())
	}
}

func connect(b *testing.B, url string, opts ...nats.Option) *nats.Conn {
	b.Helper()
	nc, err := nats.Connect(url, append(opts, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectBufSize(64<<20))...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

// parallel runs fn for 0..n-1 with fanOutInflight at a time, each up to
// ten times while the cloud is unavailable (a shared machine under load
// times appends out), and fails the benchmark on the first other error.
func parallel(b *testing.B, n int, fn func(i int) error) {
	b.Helper()
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range min(n, fanOutInflight) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				err := fn(i)
				for try := 1; try < 10 && fault.KindOf(err) == fault.KindUnavailable; try++ {
					time.Sleep(min(time.Duration(try)*250*time.Millisecond, 2*time.Second))
					err = fn(i)
				}
				if err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n))
					return
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		b.Fatal(first)
	}
}

// poll waits for cond while the deployment comes up.
func poll(b *testing.B, cond func() bool) {
	b.Helper()
	if !testkit.Until(5*time.Minute, cond) {
		b.Fatal("timed out")
	}
}

// procMemory reads a process's peak and current resident set size.
func procMemory(b *testing.B, pid int) (hwm, rss int64) {
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(s), "\n") {
		for key, into := range map[string]*int64{"VmHWM:": &hwm, "VmRSS:": &rss} {
			if v, ok := strings.CutPrefix(line, key); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				*into = kb << 10
			}
		}
	}
	return hwm, rss
}

// loadAverage is the machine's 1, 5 and 15 minute load average, and its
// cores.
func loadAverage() string {
	s, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(s))
	return strings.Join(f[:min(3, len(f))], " ") + " on " + strconv.Itoa(runtime.NumCPU()) + " cores"
}
