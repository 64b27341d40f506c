package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/logs"
	"github.com/flmngr/flmngr/services/testkit"
)

// subscriber is an open event stream read into ids.
type subscriber struct {
	from uint64 // the first id expected, 0 when unknown
	ids  chan uint64
	text chan string // every line, when kept
	stop context.CancelFunc
}

// subscribe opens GET path with the admin token and headers, and reads
// its ids in the background.
func (e *env) subscribe(path string, header map[string]string, keepText bool) *subscriber {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		e.t.Fatalf("%s: %d %s", path, res.StatusCode, b)
	}
	s := &subscriber{ids: make(chan uint64, 1<<16), stop: cancel}
	if keepText {
		s.text = make(chan string, 1<<16)
	}
	go func() {
		defer res.Body.Close()
		defer close(s.ids)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if s.text != nil {
				s.text <- sc.Text()
			}
			if v, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
				id, _ := strconv.ParseUint(v, 10, 64)
				s.ids <- id
			}
		}
	}()
	return s
}

// expect reads ids until until and checks that they run from s.from
// without a gap or a duplicate.
func (s *subscriber) expect(t *testing.T, what string, until uint64) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	next := s.from
	for next <= until {
		select {
		case id, ok := <-s.ids:
			if !ok {
				t.Fatalf("%s: the stream ended before %d", what, next)
			}
			if next == 0 {
				next = id
			}
			if id != next {
				t.Fatalf("%s: got id %d, want %d: a gap or a duplicate", what, id, next)
			}
			next++
		case <-timeout:
			t.Fatalf("%s: no id %d after a minute", what, next)
		}
	}
	s.from = next
}

// metric reads one figure of /metrics.
func (e *env) metric(name string) string {
	e.t.Helper()
	code, b := e.json("GET", "/metrics", "admin", "")
	if code != 200 {
		e.t.Fatalf("/metrics: %d", code)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// waitMetric polls /metrics until name is want.
func (e *env) waitMetric(name, want string) {
	e.t.Helper()
	got := ""
	if !testkit.Until(20*time.Second, func() bool { got = e.metric(name); return got == want }) {
		e.t.Fatalf("%s is %s, want %s", name, got, want)
	}
}

func (e *env) lastSeq() uint64 {
	e.t.Helper()
	n, err := e.cloud.Log.LastSeq(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) createTasks(from, n int) {
	e.t.Helper()
	for i := from; i < from+n; i++ {
		if code, b := e.json("POST", "/api/v1/tasks", "admin", fmt.Sprintf(`{"task_id":"s%d","host":"h","port":%d}`, i, i+1)); code != 201 {
			e.t.Errorf("create: %d %s", code, b)
		}
	}
}

// TestEventStreamsShareOneConsumer opens 200 event streams: 100 from now
// on, then, while events are appended, 50 from the start of the log
// and 50 resuming with a Last-Event-ID just before the first ones
// opened. They share one consumer; each gets every event from where it
// asked, once, in order; when they close, the consumer stops.
func TestEventStreamsShareOneConsumer(t *testing.T) {
	e := deploy(t, false)
	e.createTasks(0, 10)
	before := e.lastSeq()
	var subs []*subscriber
	for range 100 {
		s := e.subscribe("/api/v1/events/stream", nil, false)
		s.from = before + 1
		subs = append(subs, s)
	}
	if got := e.metric("flmngr_http_stream_followers"); got != "1" {
		t.Fatalf("100 streams of all events use %s consumers", got)
	}
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		e.createTasks(10, 20)
	}()
	for i := range 100 {
		var s *subscriber
		if i%2 == 0 {
			s = e.subscribe("/api/v1/events/stream?since=0", nil, false)
			s.from = 1
		} else {
			s = e.subscribe("/api/v1/events/stream", map[string]string{"Last-Event-ID": fmt.Sprint(before - 3)}, false)
			s.from = before - 2
		}
		subs = append(subs, s)
	}
	<-appended
	if got := e.metric("flmngr_http_stream_followers"); got != "1" {
		t.Fatalf("200 streams of all events use %s consumers", got)
	}
	until := e.lastSeq()
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() { s.expect(t, fmt.Sprintf("stream %d", i), until) })
	}
	wg.Wait()
	for _, s := range subs {
		s.stop()
	}
	e.waitMetric("flmngr_http_streams", "0")
	e.waitMetric("flmngr_http_stream_followers", "0")
}

// TestStalledStreamIsDropped opens a stream whose client reads nothing
// and one that reads, then appends more events than a hub keeps and
// than the sockets hold: the reading stream gets them all, and the
// stalled one, when its client reads again, gets what it was sent, then
// an event telling it to reconnect with Last-Event-ID, and ends (or,
// when the test ran so slowly that it read nothing for the write
// timeout, it was dropped by the write deadline).
func TestStalledStreamIsDropped(t *testing.T) {
	e := deploy(t, false)
	start := e.lastSeq()
	host := strings.TrimPrefix(e.base, "http://")
	// A small receive buffer, set before connecting so that the window
	// the client advertises is small from the start.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/events/stream HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", host, e.token)
	res, err := http.ReadResponse(bufio.NewReaderSize(conn, 4096), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("the stalled stream: %v %v", res, err)
	}
	reading := e.subscribe("/api/v1/events/stream", nil, false)
	reading.from = start + 1
	stalledAt := time.Now()
	const n = 6000 // 4 KiB each: more than the ring and the sockets hold
	js := e.cloud.Log.JetStream()
	sensors := make([]string, 60)
	for i := range sensors {
		sensors[i] = strings.Repeat(string(rune('a'+i%26)), 60)
	}
	for i := range n {
		env, _ := events.New(fmt.Sprintf("big%d", i), "test", events.Client(fmt.Sprintf("c%d", i%50)), time.Now(),
			&events.ClientInfoReported{Attributes: events.ClientAttributes{Sensors: sensors, DataQnt: int64(i)}, Changed: []string{"data_qnt"}})
		subj, _ := e.cloud.Log.Subject(env)
		data, _ := events.Encode(env)
		if _, err := js.PublishAsync(subj, data); err != nil {
			t.Fatal(err)
		}
		if i%1000 == 999 { // the reading stream keeps up, however slow the test runs
			<-js.PublishAsyncComplete()
			reading.expect(t, "the reading stream", start+uint64(i)+1)
		}
	}
	reading.stop()

	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	next, reconnect := start+1, false
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "id: "); ok {
			if reconnect {
				t.Fatalf("an event after the reconnect event: %s", line)
			}
			if id, _ := strconv.ParseUint(v, 10, 64); id != next {
				t.Fatalf("the stalled stream: id %d, want %d", id, next)
			}
			next++
		}
		if line == "event: reconnect" {
			reconnect = true
		}
	}
	if err := sc.Err(); err != nil {
		// A client that read nothing for writeTimeout is dropped by the
		// write deadline, with no room left for a last event.
		if stalled := time.Since(stalledAt); stalled > 10*time.Second && next > start+1 {
			t.Logf("the stalled stream got %d events and was dropped by the write deadline after %v of stalling", next-1-start, stalled)
			return
		}
		t.Fatalf("the stalled stream did not end after id %d of %d: %v", next-1, start+n, err)
	}
	if !reconnect || next > start+n {
		t.Fatalf("the stalled stream ended after id %d of %d, told to reconnect: %v", next-1, start+n, reconnect)
	}
	t.Logf("the stalled stream got %d of %d events, then was told to reconnect", next-1-start, n)
}

// TestStreamOpenFailureAnswersAnError: a stream that cannot be followed
// (its JetStream stream is gone) is answered with a JSON error and a
// status, not with a 200 that closes at once.
func TestStreamOpenFailureAnswersAnError(t *testing.T) {
	e := deploy(t, false)
	if code, b := e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"f1","host":"h","port":1}`); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	if err := e.cloud.Log.JetStream().DeleteStream(context.Background(), logs.Stream); err != nil {
		t.Fatal(err)
	}
	code, b := e.json("GET", "/api/v1/tasks/f1/logs/stream", "admin", "")
	e.expectError(code, b, 503, "unavailable", "")
}
