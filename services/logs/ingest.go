package logs

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/services/limit"
)

// IngestConfig configures Ingest.
type IngestConfig struct {
	// Allowed reports whether client may write the output of a run of a
	// task: it was offered that run. Positive answers are remembered a
	// while, so the last lines of a run that just ended still land.
	Allowed func(client, task, run string) bool
	// Rate and Burst bound each client's lines (default 200 a second,
	// bursts of 2,000).
	Rate  float64
	Burst int
	// MaxLine bounds a line's text (default 64 KiB); longer ones are cut.
	MaxLine int
	Logger  *slog.Logger
}

// Ingest stores the lines client agents publish on their own subjects.
type Ingest struct {
	nc      *nats.Conn
	pub     *Publisher
	cfg     IngestConfig
	limiter *limit.Limiter
	dropped atomic.Int64

	mu      sync.Mutex
	allowed map[string]time.Time // client/task/run → until when
}

// allowFor is how long a positive Allowed answer is trusted.
const allowFor = time.Minute

// NewIngest returns an Ingest reading from nc and storing through pub.
func NewIngest(nc *nats.Conn, pub *Publisher, cfg IngestConfig) *Ingest {
	cfg.Rate = cmp.Or(cfg.Rate, 200)
	cfg.Burst = cmp.Or(cfg.Burst, 2000)
	cfg.MaxLine = cmp.Or(cfg.MaxLine, 64<<10)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Ingest{nc: nc, pub: pub, cfg: cfg, limiter: limit.New(cfg.Rate, cfg.Burst), allowed: map[string]time.Time{}}
}

// Dropped counts the lines refused: over the rate, for a run the client
// was not offered, or malformed.
func (in *Ingest) Dropped() int64 { return in.dropped.Load() }

// Run takes lines in until ctx ends.
func (in *Ingest) Run(ctx context.Context) error {
	sub, err := in.nc.Subscribe(ClientPrefix+".>", in.take)
	if err != nil {
		return err
	}
	// A burst of output must not make the server drop lines for a slow
	// consumer before the limiter sees them.
	_ = sub.SetPendingLimits(1<<16, 64<<20)
	<-ctx.Done()
	return sub.Unsubscribe()
}

func (in *Ingest) take(m *nats.Msg) {
	id, task, run, ok := parseClientSubject(m.Subject)
	if !ok {
		in.dropped.Add(1)
		return
	}
	if ok, _ := in.limiter.Allow(id); !ok {
		in.dropped.Add(1)
		return
	}
	if !in.may(id, task, run) {
		in.dropped.Add(1)
		return
	}
	l, ok := clientLine(id, task, run, m.Data, time.Now().UTC())
	if !ok {
		in.dropped.Add(1)
		return
	}
	if len(l.Text) > in.cfg.MaxLine {
		l.Text = l.Text[:in.cfg.MaxLine] + "… [line cut]"
	}
	in.pub.Publish(l)
}

// may reports whether client may write the output of task's run.
func (in *Ingest) may(client, task, run string) bool {
	key := client + "/" + task + "/" + run
	now := time.Now()
	in.mu.Lock()
	until, ok := in.allowed[key]
	in.mu.Unlock()
	if ok && now.Before(until) {
		return true
	}
	if in.cfg.Allowed == nil || !in.cfg.Allowed(client, task, run) {
		return false
	}
	in.mu.Lock()
	if len(in.allowed) > 100_000 {
		for k, t := range in.allowed {
			if now.After(t) {
				delete(in.allowed, k)
			}
		}
	}
	in.allowed[key] = now.Add(allowFor)
	in.mu.Unlock()
	return true
}
