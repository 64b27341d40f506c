// Package storage watches the free space of the cloud's data volume. Below
// a watermark the cloud takes no command that would grow its log (they
// are refused with insufficient_storage, HTTP 507, and an alarm), while
// reads go on: a disk that fills up stops the writes cleanly instead of
// crashing the stores that map their files into memory.
package storage

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
)

// Guard checks the free space of one directory's volume.
type Guard struct {
	dir     string
	min     uint64
	every   time.Duration
	log     *slog.Logger
	free    atomic.Uint64
	low     atomic.Bool
	onAlarm func(low bool)
}

// Free returns the bytes free for this process on dir's volume.
func Free(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// New returns a guard of dir's volume that refuses commands below min
// bytes free; onAlarm, when set, is told when the state changes.
func New(dir string, min uint64, logger *slog.Logger, onAlarm func(low bool)) *Guard {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Guard{dir: dir, min: min, every: time.Second, log: logger, onAlarm: onAlarm}
}

// Check reads the free space now and returns it.
func (g *Guard) Check() (uint64, error) {
	free, err := Free(g.dir)
	if err != nil {
		return 0, err
	}
	g.free.Store(free)
	low := free < g.min
	if g.low.Swap(low) != low {
		if low {
			g.log.Error("the data volume is nearly full: commands are refused until space is freed", "dir", g.dir, "free", Bytes(free), "min_free", Bytes(g.min))
		} else {
			g.log.Warn("the data volume has room again: commands are taken", "dir", g.dir, "free", Bytes(free))
		}
		if g.onAlarm != nil {
			g.onAlarm(low)
		}
	}
	return free, nil
}

// Run checks the free space every second until ctx ends.
func (g *Guard) Run(ctx context.Context) error {
	t := time.NewTicker(g.every)
	defer t.Stop()
	for {
		if _, err := g.Check(); err != nil {
			g.log.Warn("free space", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Low reports whether the volume is below the watermark.
func (g *Guard) Low() bool { return g.low.Load() }

// FreeBytes is the free space at the last check.
func (g *Guard) FreeBytes() uint64 { return g.free.Load() }

// Admit refuses a command while the volume is below the watermark.
func (g *Guard) Admit() error {
	if g == nil || !g.low.Load() {
		return nil
	}
	return &fault.Error{Kind: fault.KindInsufficientStorage,
		Message: fmt.Sprintf("the cloud's data volume has %s free, below its %s watermark: it takes no command until space is freed (reads go on)", Bytes(g.free.Load()), Bytes(g.min))}
}

// Bytes prints a size for people.
func Bytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
