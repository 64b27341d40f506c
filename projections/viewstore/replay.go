package viewstore

import (
	"context"
	"errors"
	"runtime"
	"sync"

	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/projections"

	"github.com/flmngr/flmngr/events"
)

// errDone ends a replay that reached its target.
var errDone = errors.New("replay done")

// chunkSize is how many events a decoding worker takes at once.
const chunkSize = 512

// chunk is a run of consecutive events: raw bytes in, decoded envelopes
// and encoded timeline entries out.
type chunk struct {
	seqs    []uint64
	raw     [][]byte
	envs    []events.Envelope
	dead    []*projections.DeadLetter // set where a message is no readable event
	entries []encodedEntry
	err     error
	done    chan struct{}
}

func (c *chunk) decode() {
	defer close(c.done)
	c.envs = make([]events.Envelope, len(c.raw))
	c.dead = make([]*projections.DeadLetter, len(c.raw))
	c.entries = make([]encodedEntry, len(c.raw))
	for i, data := range c.raw {
		env, dead := decodeOrDead(c.seqs[i], data)
		if dead != nil {
			c.dead[i] = dead
			continue
		}
		var err error
		if c.entries[i], err = timelineEntry(env); err != nil {
			c.err = err
			return
		}
		c.envs[i] = env
	}
	c.raw = nil
}

// replay reads the log from its first event up to target and calls apply
// for each event in stream order. Decoding and encoding the timeline run on
// every core; apply runs on one goroutine.
func replay(ctx context.Context, src Source, target uint64, apply func(events.Envelope, encodedEntry) error, dead func(projections.DeadLetter) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := max(1, runtime.GOMAXPROCS(0))
	work := make(chan *chunk, 2*workers)
	order := make(chan *chunk, 4*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := range work {
				c.decode()
			}
		})
	}
	applied := make(chan error, 1)
	go func() {
		var err error
		for c := range order {
			<-c.done
			if err != nil {
				continue
			}
			if err = c.err; err != nil {
				cancel(err)
				continue
			}
			for i := range c.envs {
				if c.dead[i] != nil {
					err = dead(*c.dead[i])
				} else {
					err = apply(c.envs[i], c.entries[i])
				}
				if err != nil {
					cancel(err)
					break
				}
			}
		}
		applied <- err
	}()
	cur := &chunk{done: make(chan struct{})}
	send := func() {
		order <- cur
		work <- cur
		cur = &chunk{done: make(chan struct{})}
	}
	ferr := src.FollowRaw(ctx, eventlog.FollowOptions{From: 1, Batch: 8192}, func(seq uint64, data []byte) error {
		cur.seqs = append(cur.seqs, seq)
		cur.raw = append(cur.raw, append([]byte(nil), data...))
		if seq >= target {
			send()
			return errDone
		}
		if len(cur.raw) == chunkSize {
			send()
		}
		return nil
	})
	close(work)
	close(order)
	wg.Wait()
	if err := <-applied; err != nil {
		return err
	}
	if !errors.Is(ferr, errDone) {
		return ferr
	}
	return nil
}
