package viewstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/ristretto/v2/z"
	json "github.com/goccy/go-json"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
)

// Stream ids of the stream writer, one per key family; families do not
// overlap, as the stream writer requires.
const (
	streamTimeline uint32 = iota + 1
	streamClients
	streamMeta
	streamTasks
	streamIndex
	streamDead
	streamOrder
)

// doRebuild replays the log up to its last event at the time of the call
// into a new generation and switches to it. The current views keep
// answering queries meanwhile. Keys go to Badger's stream writer, which
// builds sorted tables directly: timeline entries in sequence order as
// they are replayed; task and client views, the per-aggregate timeline
// index and the checkpoint, sorted, at the end.
func (s *Store) doRebuild(ctx context.Context, src Source) error {
	start := time.Now()
	defer func() { s.rebuildTook.Store(int64(time.Since(start))) }()
	target, err := src.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	gen := s.gen + 1
	dir := generationDir(s.dir, gen)
	if done, err := s.rebuildFromSnapshot(ctx, src, gen, target); done || err != nil {
		if err == nil {
			s.log.Info("views rebuilt from a snapshot and the log after it", "events", target, "read", s.TailRead.Load(), "took", time.Since(start))
		}
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	db, err := openDB(dir)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			db.Close()
			os.RemoveAll(dir)
		}
	}()
	w, err := newStreamWriter(db)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	defer w.release()

	tasks := map[string]*projections.TaskView{}
	clients := map[string]*projections.ClientView{}
	index := map[string][]uint64{} // index prefix → sequences, ascending
	s.TailRead.Store(0)
	if target > 0 {
		err = replay(ctx, src, target, func(e events.Envelope, entry encodedEntry) error {
			s.TailRead.Add(1)
			switch e.Aggregate.Kind {
			case events.KindTask:
				v := projections.ApplyTask(tasks[e.Aggregate.ID], e)
				if v == nil {
					delete(tasks, e.Aggregate.ID)
				} else {
					tasks[e.Aggregate.ID] = v
				}
			case events.KindClient:
				clients[e.Aggregate.ID] = projections.ApplyClient(clients[e.Aggregate.ID], e)
			}
			p := string(indexPrefixOf(e.Aggregate.Kind, e.Aggregate.ID))
			index[p] = append(index[p], e.Seq)
			if entry.task != "" && e.Aggregate.Kind != events.KindTask {
				p := string(indexPrefixOf(events.KindTask, entry.task))
				index[p] = append(index[p], e.Seq)
			}
			return w.put(streamTimeline, timelineKey(e.Seq), entry.json)
		}, func(d projections.DeadLetter) error {
			b, err := json.Marshal(d)
			if err != nil {
				return err
			}
			s.log.Error("a message of the log is no readable event: dead-lettered", "seq", d.Seq, "err", d.Error)
			return w.put(streamDead, deadLetterKey(d.Seq), b)
		})
		if err != nil {
			return fmt.Errorf("rebuild: replay: %w", err)
		}
	}
	if err := writeSorted(w, streamClients, clients, clientKey); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if err := w.put(streamMeta, checkpointKey, seqBytes(target)); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if err := w.put(streamMeta, layoutKey, seqBytes(layout)); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if err := writeSorted(w, streamTasks, tasks, taskKey); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	order := make([][]byte, 0, len(tasks))
	for id, v := range tasks {
		order = append(order, orderKey(v.CreatedSeq, id))
	}
	slices.SortFunc(order, bytes.Compare)
	for _, k := range order {
		if err := w.put(streamOrder, k, nil); err != nil {
			return fmt.Errorf("rebuild: %w", err)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(index)) {
		for _, seq := range index[p] {
			if err := w.put(streamIndex, append([]byte(p), seqBytes(seq)...), nil); err != nil {
				return fmt.Errorf("rebuild: %w", err)
			}
		}
	}
	if err := w.flush(); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if err := s.switchTo(gen, db); err != nil {
		return err
	}
	ok = true
	s.setApplied(target)
	s.log.Info("views rebuilt", "events", target, "tasks", len(tasks), "clients", len(clients), "took", time.Since(start))
	return nil
}

func writeSorted[V any](w *streamWriter, stream uint32, views map[string]*V, key func(string) []byte) error {
	for _, id := range slices.Sorted(maps.Keys(views)) {
		b, err := json.Marshal(views[id])
		if err != nil {
			return err
		}
		if err := w.put(stream, key(id), b); err != nil {
			return err
		}
	}
	return nil
}

// rebuildFromSnapshot builds generation gen from the snapshot and the
// events after it, up to target, and switches to it; done is false when
// there is no snapshot it can use (the caller then replays the whole log).
func (s *Store) rebuildFromSnapshot(ctx context.Context, src Source, gen int, target uint64) (done bool, err error) {
	if _, _, ok := lastSnapshot(s.dir); !ok {
		return false, nil
	}
	dir := generationDir(s.dir, gen)
	if err := os.RemoveAll(dir); err != nil {
		return false, fmt.Errorf("rebuild: %w", err)
	}
	start := time.Now()
	db, from, err := s.openSnapshot(dir, target)
	loaded := time.Since(start)
	if err == nil && db != nil {
		var read int
		read, err = tail(ctx, db, src, from, target)
		s.TailRead.Store(int64(read))
		if err == nil {
			s.log.Info("views snapshot loaded", "seq", from, "load", loaded.Round(time.Millisecond), "tail", (time.Since(start) - loaded).Round(time.Millisecond), "events", read)
			if err = s.switchTo(gen, db); err == nil {
				s.setApplied(target)
				return true, nil
			}
		}
		db.Close()
	}
	os.RemoveAll(dir)
	if err != nil && ctx.Err() != nil {
		return false, fmt.Errorf("rebuild: %w", err)
	}
	if err != nil && !errors.Is(err, errSnapshotUnusable) {
		s.log.Warn("views snapshot could not be used: replaying the whole log", "err", err)
	}
	return false, nil
}

// switchTo makes a rebuilt generation current and drops the old one.
func (s *Store) switchTo(gen int, db *badgerdb.DB) error {
	if err := setCurrentGeneration(s.dir, gen); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	s.dbMu.Lock()
	old, oldGen := s.db, s.gen
	s.db, s.gen = db, gen
	s.dbMu.Unlock()
	// Closing the old views flushes what they held in memory, and
	// removing them deletes every file: neither is the new views'
	// business, so neither is waited for (Close waits; Open removes a
	// generation a crash left behind).
	s.retiring.Go(func() {
		if err := old.Close(); err != nil {
			s.log.Warn("close old views", "err", err)
		}
		if err := os.RemoveAll(generationDir(s.dir, oldGen)); err != nil {
			s.log.Warn("remove old views", "err", err)
		}
	})
	return nil
}

// streamWriter buffers keys for Badger's stream writer.
type streamWriter struct {
	sw  *badgerdb.StreamWriter
	buf *z.Buffer
}

const streamBuffer = 32 << 20

func newStreamWriter(db *badgerdb.DB) (*streamWriter, error) {
	sw := db.NewStreamWriter()
	if err := sw.Prepare(); err != nil {
		return nil, err
	}
	return &streamWriter{sw: sw, buf: z.NewBuffer(streamBuffer, "flmngr-rebuild")}, nil
}

func (w *streamWriter) put(stream uint32, key, value []byte) error {
	return w.putKV(&pb.KV{Key: key, Value: value, Version: 1, StreamId: stream})
}

func (w *streamWriter) putKV(kv *pb.KV) error {
	badgerdb.KVToBuffer(kv, w.buf)
	if w.buf.LenNoPadding() >= streamBuffer {
		return w.write()
	}
	return nil
}

func (w *streamWriter) write() error {
	if err := w.sw.Write(w.buf); err != nil {
		return err
	}
	w.buf.Reset()
	return nil
}

func (w *streamWriter) flush() error {
	if err := w.write(); err != nil {
		return err
	}
	return w.sw.Flush()
}

func (w *streamWriter) release() { _ = w.buf.Release() }
