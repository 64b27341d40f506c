// Package presence tells online clients from silent ones. Agents publish
// heartbeats on flmngr.hb.<client>; a client not heard from for the
// timeout is recorded as disconnected, and as reconnected (with the
// length of the gap) when it is heard again.
package presence

import (
	"cmp"
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/projections"
)

// Executor runs commands.
type Executor interface {
	Execute(ctx context.Context, cmd commands.Command) (commands.Result, error)
}

// Clients lists the registered clients.
type Clients interface {
	Clients() ([]projections.ClientView, error)
}

// Config configures the monitor.
type Config struct {
	// Timeout is the silence after which a client is offline (default
	// 15s: three missed heartbeats).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Monitor watches heartbeats.
type Monitor struct {
	nc      *nats.Conn
	cmds    Executor
	clients Clients
	cfg     Config

	mu      sync.Mutex
	seen    map[string]time.Time
	offline map[string]time.Time // silent since
}

// New returns a monitor; Run runs it.
func New(nc *nats.Conn, cmds Executor, clients Clients, cfg Config) *Monitor {
	cfg.Timeout = cmp.Or(cfg.Timeout, 15*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Monitor{nc: nc, cmds: cmds, clients: clients, cfg: cfg, seen: map[string]time.Time{}, offline: map[string]time.Time{}}
}

// Run watches until ctx ends. Clients registered before it started get one
// timeout to be heard from.
func (m *Monitor) Run(ctx context.Context) error {
	start := time.Now()
	if known, err := m.clients.Clients(); err == nil {
		m.mu.Lock()
		for _, c := range known {
			m.seen[c.ID] = start
			if !c.Online {
				m.offline[c.ID] = start
			}
		}
		m.mu.Unlock()
	}
	sub, err := m.nc.Subscribe("flmngr.hb.*", func(msg *nats.Msg) {
		id := strings.TrimPrefix(msg.Subject, "flmngr.hb.")
		now := time.Now()
		m.mu.Lock()
		m.seen[id] = now
		since, wasOffline := m.offline[id]
		delete(m.offline, id)
		m.mu.Unlock()
		if wasOffline {
			go m.record(ctx, commands.RecordPresence{ClientID: id, Online: true, Gap: now.Sub(since)})
		}
	})
	if err != nil {
		return err
	}
	defer sub.Unsubscribe()
	tick := time.NewTicker(m.cfg.Timeout / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			m.mu.Lock()
			var silent []commands.RecordPresence
			for id, at := range m.seen {
				if _, off := m.offline[id]; !off && now.Sub(at) > m.cfg.Timeout {
					m.offline[id] = at
					silent = append(silent, commands.RecordPresence{ClientID: id, LastSeen: at})
				}
			}
			m.mu.Unlock()
			for _, c := range silent {
				m.record(ctx, c)
			}
		}
	}
}

func (m *Monitor) record(ctx context.Context, c commands.RecordPresence) {
	ctx, cancel := context.WithTimeout(commands.WithSource(ctx, "presence"), 10*time.Second)
	defer cancel()
	if _, err := m.cmds.Execute(ctx, c); err != nil && fault.KindOf(err) != fault.KindNotFound {
		m.cfg.Logger.Warn("record presence", "client_id", c.ClientID, "online", c.Online, "err", err)
	}
}
