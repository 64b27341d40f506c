package files

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// ChunkSize is the most bytes one remote read returns: under the 1 MiB
// that NATS allows a message by default.
const ChunkSize = 512 << 10

// Limits of the chunk reader.
const (
	maxReadings = 256
	idleReading = 30 * time.Second
)

// Chunks serves stored files piece by piece to readers that may not read
// the object store themselves (client agents). A reader that asks for the
// piece after the one it got continues the same read of the object, so a
// file costs one pass over the store whatever its size; any other offset
// starts a new read.
type Chunks struct {
	store *Store

	mu       sync.Mutex
	readings map[string]*reading
}

type reading struct {
	mu   sync.Mutex
	r    *io.PipeReader
	pos  int64
	stop context.CancelFunc
	used time.Time
}

func (r *reading) close() {
	r.stop()
	_ = r.r.Close()
}

// NewChunks returns a chunk reader over store.
func NewChunks(store *Store) *Chunks {
	return &Chunks{store: store, readings: map[string]*reading{}}
}

// Read returns up to ChunkSize bytes of a stored file from offset. reader
// names who reads (its sequential reads share one pass).
func (c *Chunks) Read(ctx context.Context, reader, task string, ref events.FileRef, offset int64) ([]byte, error) {
	if offset < 0 || offset > ref.Size {
		return nil, fault.Invalid("offset", "offset %d is outside the file's %d bytes", offset, ref.Size)
	}
	if offset == ref.Size {
		return []byte{}, nil
	}
	key := reader + "\x00" + task + "\x00" + ref.SHA256
	rd, err := c.reading(ctx, key, task, ref, offset)
	if err != nil {
		return nil, err
	}
	defer rd.mu.Unlock()
	buf := make([]byte, min(ChunkSize, ref.Size-offset))
	n, err := io.ReadFull(rd.r, buf)
	rd.pos += int64(n)
	rd.used = time.Now()
	if err != nil || rd.pos == ref.Size {
		c.drop(key, rd)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return buf[:n], nil // the stored object is shorter than ref: the reader's check tells
	}
	if errors.Is(err, ErrDigestMismatch) {
		return nil, fault.Conflict("file %s of task %s: %v", ref.Name, task, err)
	}
	if err != nil {
		return nil, fault.Unavailable(err, "read file %s of task %s", ref.Name, task)
	}
	return buf, nil
}

// reading returns the reading of key positioned at offset, locked.
func (c *Chunks) reading(ctx context.Context, key, task string, ref events.FileRef, offset int64) (*reading, error) {
	c.mu.Lock()
	rd := c.readings[key]
	c.mu.Unlock()
	if rd != nil {
		rd.mu.Lock()
		if rd.pos == offset {
			return rd, nil
		}
		rd.mu.Unlock()
		c.drop(key, rd)
	}
	info, err := c.store.obs.GetInfo(ctx, objectName(task, ref.SHA256))
	if err != nil {
		return nil, fault.NotFound("file %s of task %s is not in the file store", ref.Name, task)
	}
	rctx, stop := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	rd = &reading{r: pr, stop: stop, used: time.Now()}
	go func() {
		_, err := c.store.read(rctx, info, pw, ref.Size)
		pw.CloseWithError(err)
	}()
	rd.mu.Lock()
	if offset > 0 {
		n, err := io.CopyN(io.Discard, pr, offset)
		rd.pos = n
		if err != nil {
			rd.mu.Unlock()
			rd.close()
			return nil, fault.Unavailable(err, "read file %s of task %s", ref.Name, task)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.readings) >= maxReadings {
		for k, old := range c.readings {
			if old.mu.TryLock() {
				if time.Since(old.used) > idleReading {
					delete(c.readings, k)
					old.close()
				}
				old.mu.Unlock()
			}
		}
	}
	if len(c.readings) >= maxReadings {
		rd.mu.Unlock()
		rd.close()
		return nil, fault.Unavailable(nil, "%d downloads are under way; try again shortly", maxReadings)
	}
	if prev := c.readings[key]; prev != nil {
		// A concurrent request for the same file: the newer read wins.
		go func() { prev.mu.Lock(); prev.close(); prev.mu.Unlock() }()
	}
	c.readings[key] = rd
	return rd, nil
}

func (c *Chunks) drop(key string, rd *reading) {
	c.mu.Lock()
	if c.readings[key] == rd {
		delete(c.readings, key)
	}
	c.mu.Unlock()
	rd.close()
}

// Remote fetches task files with a chunk getter (a request to the cloud's
// chunk endpoint), writing them as Fetch does.
type Remote struct {
	Get func(ctx context.Context, task string, ref events.FileRef, offset int64) ([]byte, error)
}

// Fetch writes a file of a task into dir, verified (see WriteVerified).
func (r Remote) Fetch(ctx context.Context, task string, ref events.FileRef, dir string) error {
	return WriteVerified(dir, ref, func(w io.Writer) (int64, error) {
		var n int64
		for n < ref.Size {
			b, err := r.Get(ctx, task, ref, n)
			if err != nil {
				return n, err
			}
			if len(b) == 0 {
				return n, fmt.Errorf("%w: the file ended after %d bytes", ErrDigestMismatch, n)
			}
			if _, err := w.Write(b); err != nil {
				return n, err
			}
			n += int64(len(b))
		}
		return n, nil
	})
}

// Materialize makes dir hold exactly the given files (see
// Store.Materialize).
func (r Remote) Materialize(ctx context.Context, task string, refs []events.FileRef, dir string) error {
	return MaterializeWith(refs, dir, func(ref events.FileRef) error { return r.Fetch(ctx, task, ref, dir) })
}
