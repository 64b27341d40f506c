package api_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/cloud"
)

// openCloud runs the cloud side on an embedded server listening on a
// loopback TCP port and returns a client connected over TCP, as the CLI
// and agents are.
func openCloud(tb testing.TB) (*cloud.Cloud, *api.Client) {
	tb.Helper()
	c, err := cloud.Open(context.Background(), cloud.Config{DataDir: filepath.Join(tb.TempDir(), "data"), Listen: "127.0.0.1:0", Name: "bench"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	nc, err := nats.Connect(c.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	return c, api.NewClient(nc, 10*time.Second)
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkCreateTaskRoundTrip measures one create-task command over the
// NATS endpoint, request to reply, one at a time: validation, criterion
// compilation, the append to JetStream with its expected sequence and the
// reply.
func BenchmarkCreateTaskRoundTrip(b *testing.B) {
	_, c := openCloud(b)
	ctx := context.Background()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		start := time.Now()
		_, err := c.CreateTask(ctx, commands.CreateTask{TaskID: fmt.Sprintf("t%d", i), Host: "localhost", Port: 8080,
			FilesPaths: []string{"client.py", "task.py"}, SelectionCriteria: `"camera" in sensors`, Tags: []string{"mnist"}})
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
}

// BenchmarkClientReports1000 has 1,000 registered clients report changed
// attributes concurrently, each on its own goroutine, and reports the
// throughput in commands per second.
func BenchmarkClientReports1000(b *testing.B) {
	const clients = 1000
	_, c := openCloud(b)
	ctx := context.Background()
	sensors := []string{"camera"}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.RegisterClient(ctx, commands.RegisterClient{ClientID: fmt.Sprintf("c%04d", i), ClientInfo: commands.ClientInfo{Sensors: &sensors}}); err != nil {
				b.Error(err)
			}
		}()
	}
	wg.Wait()
	var round atomic.Int64
	var total atomic.Int64
	var elapsed time.Duration
	for b.Loop() {
		r := round.Add(1)
		start := time.Now()
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q := r*clients + int64(i)
				if _, err := c.ReportClient(ctx, commands.ReportClientInfo{ClientID: fmt.Sprintf("c%04d", i), ClientInfo: commands.ClientInfo{DataQnt: &q}}); err != nil {
					b.Error(err)
					return
				}
				total.Add(1)
			}()
		}
		wg.Wait()
		elapsed += time.Since(start)
	}
	b.ReportMetric(float64(total.Load())/elapsed.Seconds(), "cmds/s")
}
