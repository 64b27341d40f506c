package viewstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	json "github.com/goccy/go-json"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/projections"
)

// Source is the event log as the projections need it.
type Source interface {
	Follow(ctx context.Context, opts eventlog.FollowOptions, fn func(events.Envelope) error) error
	FollowRaw(ctx context.Context, opts eventlog.FollowOptions, fn func(seq uint64, data []byte) error) error
	LastSeq(ctx context.Context) (uint64, error)
}

// Store holds the views. Open it, run Run in a goroutine, query it from
// anywhere, Close it after Run returned.
//
// The views live in a generation directory under dir named by the file
// CURRENT. A rebuild writes a new generation beside the old one, which
// keeps answering queries, then switches CURRENT to it and removes the old
// one; a rebuild interrupted by a crash leaves only a directory that the
// next Open removes.
type Store struct {
	dir     string
	gen     int
	dbMu    sync.RWMutex // guards db against a generation switch
	db      *badgerdb.DB
	log     *slog.Logger
	applied atomic.Uint64

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever applied moves

	rebuild chan chan error

	applyMu sync.Mutex // held while events are applied, and by Snapshot
	snapMu  sync.Mutex // one snapshot written or read at a time
	// retiring closes and removes generations a rebuild replaced.
	retiring sync.WaitGroup

	// TailRead counts the events the last rebuild read from the log
	// (all of them without a snapshot, the tail after one with it).
	TailRead    atomic.Int64
	rebuildTook atomic.Int64 // nanoseconds
}

// maxBatch bounds how many events go into one transaction.
const maxBatch = 512

// Open opens (creating if needed) the views in dir.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("views directory: %w", err)
	}
	gen, err := currentGeneration(dir)
	if err != nil {
		return nil, err
	}
	if err := removeOtherGenerations(dir, gen); err != nil {
		return nil, err
	}
	db, err := openDB(generationDir(dir, gen))
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, gen: gen, db: db, log: logger, changed: make(chan struct{}), rebuild: make(chan chan error)}
	cp, err := s.readCheckpoint()
	if err != nil {
		db.Close()
		return nil, err
	}
	s.applied.Store(cp)
	return s, nil
}

func openDB(dir string) (*badgerdb.DB, error) {
	// One writer (the runner) and small values: no conflict detection,
	// no compression (the views are small next to the log), two
	// compactors for a two-core machine, and small memtables and caches
	// so that the views do not dominate the cloud's memory.
	opts := badgerdb.DefaultOptions(dir).
		WithLogger(nil).
		WithNumVersionsToKeep(1).
		WithDetectConflicts(false).
		WithMetricsEnabled(false).
		WithCompression(options.None).
		WithNumCompactors(2).
		WithMemTableSize(16 << 20).
		WithNumMemtables(3).
		WithValueLogFileSize(256 << 20).
		WithBlockCacheSize(32 << 20).
		WithIndexCacheSize(16 << 20)
	db, err := badgerdb.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open views in %s: %w", dir, err)
	}
	return db, nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.retiring.Wait()
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	return s.db.Close()
}

// view runs fn in a read transaction of the current generation.
func (s *Store) view(fn func(*badgerdb.Txn) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.View(fn)
}

// Applied returns the stream sequence of the last event in the views.
func (s *Store) Applied() uint64 { return s.applied.Load() }

func (s *Store) setApplied(seq uint64) {
	s.applied.Store(seq)
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// WaitFor blocks until the views include the event at seq or ctx ends.
func (s *Store) WaitFor(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if s.applied.Load() >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("views at %d, waiting for %d: %w", s.applied.Load(), seq, ctx.Err())
		}
	}
}

func (s *Store) readCheckpoint() (uint64, error) {
	var cp uint64
	err := s.view(func(txn *badgerdb.Txn) error {
		_, err := getValue(txn, checkpointKey, func(v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("checkpoint has %d bytes", len(v))
			}
			cp = binary.BigEndian.Uint64(v)
			return nil
		})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read checkpoint: %w", err)
	}
	return cp, nil
}

// layout is the version of the views' keys and contents. Views of
// another layout (an older flmngr made them) are rebuilt from the log
// when the store runs: the log is the truth, the views follow.
const layout = 2

// readLayout returns the layout of the stored views (0: none recorded).
func (s *Store) readLayout() (uint64, error) {
	var l uint64
	err := s.view(func(txn *badgerdb.Txn) error {
		_, err := getValue(txn, layoutKey, func(v []byte) error {
			if len(v) == 8 {
				l = binary.BigEndian.Uint64(v)
			}
			return nil
		})
		return err
	})
	return l, err
}

// upToDateLayout rebuilds views of another layout, or marks empty ones
// with this layout.
func (s *Store) upToDateLayout(ctx context.Context, src Source) error {
	if _, _, ok := lastSnapshot(s.dir); ok && s.Applied() == 0 {
		// Views lost, a snapshot kept: it and the events after it.
		return s.doRebuild(ctx, src)
	}
	l, err := s.readLayout()
	if err != nil || l == layout {
		return err
	}
	if s.Applied() == 0 {
		s.dbMu.RLock()
		defer s.dbMu.RUnlock()
		return s.db.Update(func(txn *badgerdb.Txn) error { return txn.Set(layoutKey, seqBytes(layout)) })
	}
	s.log.Info("the views were made by another version of flmngr: rebuilding them from the log", "layout", l, "want", layout)
	return s.doRebuild(ctx, src)
}

// Run keeps the views up to date with the log until ctx ends, following
// it from the event after the checkpoint. Rebuild requests are carried out
// between batches. Snapshots are written as SnapshotEvery says, and when
// Run stops.
func (s *Store) Run(ctx context.Context, src Source) error {
	if err := s.upToDateLayout(ctx, src); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	snapTick := time.NewTicker(s.snapEvery())
	defer snapTick.Stop()
	defer s.snapshotOnStop() // a rebuild then reads only what follows
	for {
		fctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- s.follow(fctx, src) }()
		var reply chan error
		for reply == nil {
			select {
			case <-snapTick.C:
				s.snapshotIfBehind()
				continue
			case err := <-done:
				cancel()
				if ctx.Err() != nil {
					return nil
				}
				return err
			case reply = <-s.rebuild:
			}
		}
		cancel()
		<-done
		err := s.doRebuild(ctx, src)
		reply <- err
		if err != nil && ctx.Err() != nil {
			return nil
		}
	}
}

// Rebuild asks a running Run to drop the views and replay the log, and
// waits for it to finish. It returns the checkpoint after the rebuild.
func (s *Store) Rebuild(ctx context.Context) (uint64, error) {
	reply := make(chan error, 1)
	select {
	case s.rebuild <- reply:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case err := <-reply:
		return s.Applied(), err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// RebuildOffline drops the views and replays the log without Run.
func (s *Store) RebuildOffline(ctx context.Context, src Source) (uint64, error) {
	err := s.doRebuild(ctx, src)
	return s.Applied(), err
}

// follow applies events in batches: it blocks for one event, then takes
// whatever else has already arrived, up to maxBatch, into the same
// transaction.
func (s *Store) follow(ctx context.Context, src Source) error {
	ch := make(chan item, 4*maxBatch)
	ferr := make(chan error, 1)
	go func() {
		ferr <- src.FollowRaw(ctx, eventlog.FollowOptions{From: s.Applied() + 1, Batch: 2 * maxBatch}, func(seq uint64, data []byte) error {
			e, dead := decodeOrDead(seq, data)
			select {
			case ch <- item{seq: seq, env: e, dead: dead}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	batch := make([]item, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case e := <-ch:
			batch = append(batch, e)
		case err := <-ferr:
			return err
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case e := <-ch:
				batch = append(batch, e)
			default:
				break drain
			}
		}
		if err := s.applyBatch(batch); err != nil {
			return err
		}
	}
}

// item is one message of the log: an event, or a dead letter.
type item struct {
	seq  uint64
	env  events.Envelope
	dead *projections.DeadLetter
}

// applyBatch folds events into the views in one transaction with the
// checkpoint; events at or below the checkpoint are skipped, and a
// message that is no readable event is recorded as a dead letter.
func (s *Store) applyBatch(batch []item) error {
	from := s.Applied()
	var fresh []item
	for _, it := range batch {
		if it.seq > from {
			fresh = append(fresh, it)
			if it.dead != nil {
				s.log.Error("a message of the log is no readable event: dead-lettered", "seq", it.seq, "err", it.dead.Error)
			}
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	s.applyMu.Lock()
	s.dbMu.RLock()
	err := s.db.Update(func(txn *badgerdb.Txn) error { return applyTxn(txn, fresh) })
	s.dbMu.RUnlock()
	if err == nil {
		s.setApplied(fresh[len(fresh)-1].seq) // before a snapshot may read it
	}
	s.applyMu.Unlock()
	if errors.Is(err, badgerdb.ErrTxnTooBig) && len(fresh) > 1 {
		half := len(fresh) / 2
		if err := s.applyBatch(fresh[:half]); err != nil {
			return err
		}
		return s.applyBatch(fresh[half:])
	}
	if err != nil {
		return fmt.Errorf("apply events %d-%d: %w", fresh[0].seq, fresh[len(fresh)-1].seq, err)
	}
	return nil
}

func applyTxn(txn *badgerdb.Txn, batch []item) error {
	tasks := map[string]*projections.TaskView{}
	createdBefore := map[string]uint64{} // a task's creation before the batch
	clients := map[string]*projections.ClientView{}
	for _, it := range batch {
		if it.dead != nil {
			b, err := json.Marshal(it.dead)
			if err != nil {
				return err
			}
			if err := txn.Set(deadLetterKey(it.seq), b); err != nil {
				return err
			}
			continue
		}
		e := it.env
		switch e.Aggregate.Kind {
		case events.KindTask:
			v, stored, err := batchView(txn, tasks, taskKey, e.Aggregate.ID)
			if err != nil {
				return err
			}
			if stored && v != nil {
				createdBefore[e.Aggregate.ID] = v.CreatedSeq
			}
			tasks[e.Aggregate.ID] = projections.ApplyTask(v, e)
		case events.KindClient:
			v, _, err := batchView(txn, clients, clientKey, e.Aggregate.ID)
			if err != nil {
				return err
			}
			clients[e.Aggregate.ID] = projections.ApplyClient(v, e)
		}
		entry, err := timelineEntry(e)
		if err != nil {
			return err
		}
		if err := writeTimeline(txn.Set, e, entry); err != nil {
			return err
		}
	}
	if err := writeViews(txn.Set, txn.Delete, tasks, clients); err != nil {
		return err
	}
	// The creation index follows the tasks that were created or deleted.
	for id, v := range tasks {
		before, now := createdBefore[id], uint64(0)
		if v != nil {
			now = v.CreatedSeq
		}
		if before == now {
			continue
		}
		if before != 0 {
			if err := txn.Delete(orderKey(before, id)); err != nil {
				return err
			}
		}
		if now != 0 {
			if err := txn.Set(orderKey(now, id), nil); err != nil {
				return err
			}
		}
	}
	return txn.Set(checkpointKey, seqBytes(batch[len(batch)-1].seq))
}

// batchView is the view of id as the batch left it, else as stored (then
// stored is true; nil when there is none).
func batchView[V any](txn *badgerdb.Txn, batch map[string]*V, key func(string) []byte, id string) (v *V, stored bool, err error) {
	if v, ok := batch[id]; ok {
		return v, false, nil
	}
	v, err = getJSON[V](txn, key(id))
	return v, true, err
}

// getJSON decodes the JSON value at key, or returns nil when there is none.
func getJSON[T any](txn *badgerdb.Txn, key []byte) (*T, error) {
	v := new(T)
	found, err := getValue(txn, key, func(b []byte) error { return json.Unmarshal(b, v) })
	if !found {
		return nil, err
	}
	return v, err
}

// getValue hands the value at key to read and reports whether there was one.
func getValue(txn *badgerdb.Txn, key []byte, read func([]byte) error) (bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badgerdb.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(read)
}

// encodedEntry is a timeline entry ready to store.
type encodedEntry struct {
	json []byte
	task string
}

// timelineEntry computes and encodes an event's timeline entry. It is pure
// and may run on any goroutine.
func timelineEntry(e events.Envelope) (encodedEntry, error) {
	entry := projections.Entry(e)
	b, err := json.Marshal(entry)
	return encodedEntry{json: b, task: entry.Task}, err
}

// writeTimeline stores an event's timeline entry and its index entries.
func writeTimeline(set func(k, v []byte) error, e events.Envelope, entry encodedEntry) error {
	if err := set(timelineKey(e.Seq), entry.json); err != nil {
		return err
	}
	if err := set(indexKey(e.Aggregate.Kind, e.Aggregate.ID, e.Seq), nil); err != nil {
		return err
	}
	if entry.task != "" && e.Aggregate.Kind != events.KindTask {
		return set(indexKey(events.KindTask, entry.task, e.Seq), nil)
	}
	return nil
}

// writeViews stores views; a nil task view deletes the task.
func writeViews(set func(k, v []byte) error, del func(k []byte) error, tasks map[string]*projections.TaskView, clients map[string]*projections.ClientView) error {
	for id, v := range tasks {
		if v == nil {
			if err := del(taskKey(id)); err != nil {
				return err
			}
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := set(taskKey(id), b); err != nil {
			return err
		}
	}
	for id, v := range clients {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := set(clientKey(id), b); err != nil {
			return err
		}
	}
	return nil
}
