package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
)

func benchDeploy(b *testing.B) *env {
	b.Helper()
	c, err := cloud.Open(context.Background(), cloud.Config{DataDir: filepath.Join(b.TempDir(), "data"), Listen: "127.0.0.1:0", Gateway: "127.0.0.1:0", Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return &env{base: c.GatewayURL(), token: c.AdminToken, cloud: c}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func pct(d []time.Duration, p float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
}

// BenchmarkListTasks1000 measures GET /api/v1/tasks with 1,000 tasks:
// latency per request and CPU time of the whole process per request.
func BenchmarkListTasks1000(b *testing.B) {
	e := benchDeploy(b)
	cl := api.NewClient(e.cloud.Conn(), 30*time.Second)
	ctx := context.Background()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range 1000 {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := cl.CreateTask(ctx, commands.CreateTask{TaskID: fmt.Sprintf("t%04d", i), Host: "localhost", Port: 1 + i,
				SelectionCriteria: `"camera" in sensors`, Tags: []string{"mnist"}, FilesPaths: []string{"client.py"}}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	req := func() {
		r, _ := http.NewRequest("GET", e.base+"/api/v1/tasks", nil)
		r.Header.Set("Authorization", "Bearer "+e.token)
		res, err := http.DefaultClient.Do(r)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("list: %v %v", res, err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	req()
	var lat []time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		start := time.Now()
		req()
		lat = append(lat, time.Since(start))
	}
	cpu := cpuTime() - cpu0
	b.ReportMetric(pct(lat, 0.5), "p50-ms")
	b.ReportMetric(pct(lat, 0.99), "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu-ms/op")
}

// BenchmarkEventStreamFanOut appends 5,000 events a second for two
// seconds while 10 subscribers follow /api/v1/events/stream; it reports
// the latency from an event's recorded time to its arrival at a
// subscriber, the CPU the process used per second, and checks that every
// subscriber got every event once, in order.
func BenchmarkEventStreamFanOut(b *testing.B) {
	const benchPrefix = "fanout-"
	const subscribers, rate, seconds = 10, 5000, 2
	for b.Loop() {
		e := benchDeploy(b)
		start, err := e.cloud.Log.LastSeq(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		total := rate * seconds
		type result struct {
			lat  []time.Duration
			seqs []uint64
			ids  map[string]int // the benchmark's events, by id: how often each came
			bad  int            // data lines that were not an event
		}
		results := make([]result, subscribers)
		var wg, ready sync.WaitGroup
		for i := range subscribers {
			wg.Add(1)
			ready.Add(1)
			go func() {
				defer wg.Done()
				r, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v1/events/stream?since=%d", e.base, start), nil)
				r.Header.Set("Authorization", "Bearer "+e.token)
				res, err := http.DefaultClient.Do(r)
				if err != nil {
					b.Error(err)
					ready.Done()
					return
				}
				defer res.Body.Close()
				ready.Done()
				sc := bufio.NewScanner(res.Body)
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				got := &results[i]
				got.ids = map[string]int{}
				for len(got.ids) < total && sc.Scan() {
					data, ok := strings.CutPrefix(sc.Text(), "data: ")
					if !ok {
						continue
					}
					var ev struct {
						Seq  uint64    `json:"seq"`
						ID   string    `json:"id"`
						Time time.Time `json:"time"`
					}
					if json.Unmarshal([]byte(data), &ev) != nil || ev.Seq == 0 {
						got.bad++
						continue
					}
					got.lat = append(got.lat, time.Since(ev.Time))
					got.seqs = append(got.seqs, ev.Seq)
					if strings.HasPrefix(ev.ID, benchPrefix) {
						got.ids[ev.ID]++
					}
				}
			}()
		}
		ready.Wait()
		js := e.cloud.Log.JetStream()
		cpu0, t0 := cpuTime(), time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		sent := 0
		for sent < total {
			<-tick.C
			for range rate / 100 {
				env, _ := events.New(fmt.Sprintf("%s%d", benchPrefix, sent), "bench", events.Client(fmt.Sprintf("c%d", sent%500)), time.Now(),
					&events.ClientInfoReported{Attributes: events.ClientAttributes{Sensors: []string{"camera"}, DataQnt: int64(sent)}, Changed: []string{"data_qnt"}})
				subj, _ := e.cloud.Log.Subject(env)
				data, _ := events.Encode(env)
				if _, err := js.PublishAsync(subj, data); err != nil {
					b.Fatal(err)
				}
				sent++
			}
		}
		tick.Stop()
		<-js.PublishAsyncComplete()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			b.Fatal("subscribers did not get every event")
		}
		cpu, wall := cpuTime()-cpu0, time.Since(t0)
		var lat []time.Duration
		for i, r := range results {
			// Every event of the log, in order, none twice (the
			// matcher's may come between the benchmark's) ...
			for k, s := range r.seqs {
				if s != start+uint64(k)+1 {
					b.Fatalf("subscriber %d: event %d has seq %d: gap or duplicate", i, k, s)
				}
			}
			// ... and among them every event the benchmark appended,
			// once each.
			if len(r.ids) != total || r.bad > 0 {
				b.Fatalf("subscriber %d got %d of the %d events appended (%d lines were not events)", i, len(r.ids), total, r.bad)
			}
			for id, n := range r.ids {
				if n != 1 {
					b.Fatalf("subscriber %d got %s %d times", i, id, n)
				}
			}
			lat = append(lat, r.lat...)
		}
		b.ReportMetric(pct(lat, 0.5), "p50-ms")
		b.ReportMetric(pct(lat, 0.99), "p99-ms")
		b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-cores")
		b.Logf("%d subscribers × %d events at %d/s: p50 %.2f ms, p99 %.2f ms, %.2f cores busy", subscribers, total, rate, pct(lat, 0.5), pct(lat, 0.99), cpu.Seconds()/wall.Seconds())
	}
}
