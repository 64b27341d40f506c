package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkDownloadUnderBadPasswordFlood fires 1,000 concurrent
// /download requests with the right username and a wrong password, each
// from its own loopback address and spread over 20 tasks, so that no
// rate limit refuses them and the bound on password checks is all that
// stands between the flood and the CPU. Meanwhile it calls GET
// /api/v1/tasks with the admin token, one call after another, until
// every flood request was answered, and reports those calls' p50 and
// p99, how long the flood lasted and how its requests were answered.
func BenchmarkDownloadUnderBadPasswordFlood(b *testing.B) {
	const flood, tasks = 1000, 20
	for b.Loop() {
		e := benchDeploy(b)
		for i := range tasks {
			id := fmt.Sprintf("task%d", i)
			if code, body := benchJSON(b, e, "POST", "/api/v1/tasks", fmt.Sprintf(`{"task_id":%q,"host":"h","port":1,"username":"alice","password":"the-right-one"}`, id)); code != 201 {
				b.Fatalf("create %s: %d %s", id, code, body)
			}
		}
		rest := func() time.Duration {
			start := time.Now()
			if code, body := benchJSON(b, e, "GET", "/api/v1/tasks", ""); code != 200 {
				b.Fatalf("list tasks: %d %s", code, body)
			}
			return time.Since(start)
		}
		for range 20 {
			rest()
		}
		clients := make([]*http.Client, flood)
		for i := range clients {
			clients[i] = fromSource(sourceIP(i))
		}
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		go0 := make(chan struct{})
		for i := range flood {
			wg.Go(func() {
				req, _ := http.NewRequest("GET", fmt.Sprintf("%s/download/task%d/a.py", e.base, i%tasks), nil)
				req.SetBasicAuth("alice", "a-wrong-one")
				<-go0
				code := 0
				if res, err := clients[i].Do(req); err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					code = res.StatusCode
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		done := make(chan struct{})
		t0 := time.Now()
		close(go0)
		go func() { wg.Wait(); close(done) }()
		var lat []time.Duration
	measure:
		for {
			lat = append(lat, rest())
			select {
			case <-done:
				break measure
			default:
			}
		}
		took := time.Since(t0)
		b.ReportMetric(pct(lat, 0.5), "rest-p50-ms")
		b.ReportMetric(pct(lat, 0.99), "rest-p99-ms")
		b.ReportMetric(took.Seconds(), "flood-s")
		b.ReportMetric(float64(codes[401]), "answered-401")
		b.ReportMetric(float64(codes[429]), "answered-429")
		b.ReportMetric(float64(codes[503]), "answered-503")
		b.Logf("%d bad passwords at once: answered in %v (%v); %d REST calls meanwhile: p50 %.2f ms, p99 %.2f ms",
			flood, took.Round(time.Millisecond), codes, len(lat), pct(lat, 0.5), pct(lat, 0.99))
		if codes[0] > 0 {
			b.Fatalf("%d flood requests got no answer", codes[0])
		}
	}
}

// benchJSON sends a JSON request with the admin token.
func benchJSON(b *testing.B, e *env, method, path, body string) (int, []byte) {
	b.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.base+path, r)
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return res.StatusCode, out
}
