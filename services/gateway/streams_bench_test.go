package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
)

// BenchmarkTenThousandStreams opens 10,000 event streams in one gateway,
// appends a burst of 100 events and checks that every stream received
// every event of the burst, once and in order. The streams' clients run
// in a child process (this test binary, as TestStreamClientsHelper), so
// that the gateway's process holds the server side only: the heap it
// gained per stream, its goroutines per stream, and the delivery latency
// from an event's time to its arrival at a client are reported.
func BenchmarkTenThousandStreams(b *testing.B) {
	const streams, burst = 10_000, 100
	for b.Loop() {
		e := benchDeploy(b)
		e.t = &testing.T{}
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		goroutines := runtime.NumGoroutine()

		child := exec.Command(os.Args[0], "-test.run=^TestStreamClientsHelper$", "-test.timeout=10m")
		child.Env = append(os.Environ(), fmt.Sprintf("FLMNGR_STREAM_CLIENTS=%s|%s|%d", e.base, e.token, streams))
		child.Stderr = os.Stderr
		stdin, _ := child.StdinPipe()
		stdout, _ := child.StdoutPipe()
		if err := child.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
		lines := bufio.NewScanner(stdout)
		wait := func(prefix string) string {
			for lines.Scan() {
				if v, ok := strings.CutPrefix(lines.Text(), prefix); ok {
					return v
				}
			}
			b.Fatalf("the clients ended before %q: %v", prefix, lines.Err())
			return ""
		}
		t0 := time.Now()
		wait("READY")
		opened := time.Since(t0)
		var after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&after)
		perGoroutines := float64(runtime.NumGoroutine()-goroutines) / streams
		if got := benchMetric(b, e, "flmngr_http_streams"); got != strconv.Itoa(streams) {
			b.Fatalf("%s streams open, want %d", got, streams)
		}
		if got := benchMetric(b, e, "flmngr_http_stream_followers"); got != "1" {
			b.Fatalf("%d streams use %s consumers", streams, got)
		}
		start, err := e.cloud.Log.LastSeq(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(stdin, "%d %d\n", start+1, burst)
		wait("GO")
		cpu0 := cpuTime()
		js := e.cloud.Log.JetStream()
		for i := range burst {
			env, _ := events.New(fmt.Sprintf("burst%d", i), "bench", events.Client(fmt.Sprintf("c%d", i%10)), time.Now(),
				&events.ClientInfoReported{Attributes: events.ClientAttributes{DataQnt: int64(i)}, Changed: []string{"data_qnt"}})
			subj, _ := e.cloud.Log.Subject(env)
			data, _ := events.Encode(env)
			if _, err := js.PublishAsync(subj, data); err != nil {
				b.Fatal(err)
			}
		}
		<-js.PublishAsyncComplete()
		var res streamClientsResult
		if err := json.Unmarshal([]byte(wait("RESULT ")), &res); err != nil {
			b.Fatal(err)
		}
		cpu := cpuTime() - cpu0
		if res.Complete != streams {
			b.Fatalf("%d of %d streams got every event of the burst; first failure: %s", res.Complete, streams, res.Failure)
		}
		heap := float64(after.HeapAlloc-before.HeapAlloc) / streams / 1024
		stacks := float64(after.StackInuse-before.StackInuse) / streams / 1024
		b.ReportMetric(heap, "heap-KiB/stream")
		b.ReportMetric(stacks, "stack-KiB/stream")
		b.ReportMetric(perGoroutines, "goroutines/stream")
		b.ReportMetric(res.P50, "p50-ms")
		b.ReportMetric(res.P99, "p99-ms")
		b.ReportMetric(res.Last, "last-ms")
		b.ReportMetric(cpu.Seconds(), "gateway-cpu-s")
		b.Logf("%d streams opened in %v; %.1f KiB heap, %.1f KiB stack, %.1f goroutines each; a burst of %d events reached every stream: p50 %.1f ms, p99 %.1f ms, all in %.1f ms; the gateway's process used %.2f s of CPU for it",
			streams, opened.Round(time.Millisecond), heap, stacks, perGoroutines, burst, res.P50, res.P99, res.Last, cpu.Seconds())
	}
}

func benchMetric(b *testing.B, e *env, name string) string {
	b.Helper()
	code, body := benchJSON(b, e, "GET", "/metrics", "")
	if code != 200 {
		b.Fatalf("/metrics: %d", code)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

type streamClientsResult struct {
	Complete int     `json:"complete"`
	Failure  string  `json:"failure"`
	P50      float64 `json:"p50_ms"`
	P99      float64 `json:"p99_ms"`
	Last     float64 `json:"last_ms"`
}

// TestStreamClientsHelper is the client side of
// BenchmarkTenThousandStreams, run in a process of its own; it does
// nothing otherwise. It opens the streams, says READY, reads the first
// id and the size of the burst, says GO, and says RESULT once every
// stream has the burst or a minute has passed.
func TestStreamClientsHelper(t *testing.T) {
	spec := os.Getenv("FLMNGR_STREAM_CLIENTS")
	if spec == "" {
		t.Skip("the client side of BenchmarkTenThousandStreams")
	}
	parts := strings.Split(spec, "|")
	base, token := parts[0], parts[1]
	n, _ := strconv.Atoi(parts[2])
	host := strings.TrimPrefix(base, "http://")
	type stream struct {
		ids  []uint64
		lat  []float32
		done chan struct{}
	}
	var first, want atomic.Uint64
	ready := make(chan struct{})
	all := make([]*stream, n)
	var opened sync.WaitGroup
	dials := make(chan struct{}, 128)
	for i := range all {
		s := &stream{done: make(chan struct{})}
		all[i] = s
		opened.Add(1)
		go func() {
			dials <- struct{}{}
			conn, err := net.DialTimeout("tcp", host, time.Minute)
			if err != nil {
				fmt.Fprintln(os.Stderr, "dial:", err)
				os.Exit(2)
			}
			fmt.Fprintf(conn, "GET /api/v1/events/stream HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", host, token)
			res, err := http.ReadResponse(bufio.NewReaderSize(conn, 1024), nil)
			<-dials
			if err != nil || res.StatusCode != 200 {
				fmt.Fprintln(os.Stderr, "open:", res, err)
				os.Exit(2)
			}
			sc := bufio.NewScanner(res.Body)
			sc.Buffer(make([]byte, 2048), 1<<16)
			if !sc.Scan() || sc.Text() != ": stream open" {
				fmt.Fprintln(os.Stderr, "no open comment:", sc.Text())
				os.Exit(2)
			}
			opened.Done()
			<-ready
			k := want.Load()
			for uint64(len(s.ids)) < k && sc.Scan() {
				line := sc.Text()
				if v, ok := strings.CutPrefix(line, "id: "); ok {
					id, _ := strconv.ParseUint(v, 10, 64)
					s.ids = append(s.ids, id)
				}
				if _, after, ok := strings.Cut(line, `"time":"`); ok {
					if at, err := time.Parse(time.RFC3339Nano, after[:strings.IndexByte(after, '"')]); err == nil {
						s.lat = append(s.lat, float32(time.Since(at).Seconds()*1000))
					}
				}
			}
			close(s.done)
			conn.Close()
		}()
	}
	opened.Wait()
	fmt.Println("READY")
	var from, k uint64
	if _, err := fmt.Fscan(os.Stdin, &from, &k); err != nil {
		t.Fatal(err)
	}
	first.Store(from)
	want.Store(k)
	close(ready)
	fmt.Println("GO")
	timeout := time.After(time.Minute)
	res := streamClientsResult{}
	var lat []float32
	for i, s := range all {
		select {
		case <-s.done:
		case <-timeout:
		}
		ok := uint64(len(s.ids)) == k
		for j, id := range s.ids {
			ok = ok && id == from+uint64(j)
		}
		if ok {
			res.Complete++
			lat = append(lat, s.lat...)
		} else if res.Failure == "" {
			res.Failure = fmt.Sprintf("stream %d got ids %v, want %d from %d", i, s.ids[:min(len(s.ids), 10)], k, from)
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50 = float64(lat[len(lat)/2])
		res.P99 = float64(lat[min(len(lat)-1, len(lat)*99/100)])
		res.Last = float64(lat[len(lat)-1])
	}
	b, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", b)
}
