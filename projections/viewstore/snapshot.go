package viewstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/flmngr/flmngr/events/eventlog"
)

// A snapshot is a copy of the views as they were at a log sequence (their
// checkpoint is in it), in Badger's backup format, kept beside the
// generations. A rebuild loads it and replays only the events after it:
// the log is still the truth, the snapshot only spares reading it all
// again. A snapshot of another layout is not used.
// Its name carries the sequence: snapshot-<seq>.bak.
const snapshotGlob = "snapshot-*.bak"

func snapshotPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("snapshot-%020d.bak", seq))
}

// lastSnapshot finds the snapshot file and its sequence (ok false: none).
func lastSnapshot(dir string) (path string, seq uint64, ok bool) {
	paths, _ := filepath.Glob(filepath.Join(dir, snapshotGlob))
	for _, p := range paths {
		var n uint64
		if _, err := fmt.Sscanf(filepath.Base(p), "snapshot-%020d.bak", &n); err == nil && (!ok || n > seq) {
			path, seq, ok = p, n, true
		}
	}
	return path, seq, ok
}

// SnapshotInfo describes the snapshot a store keeps.
type SnapshotInfo struct {
	Seq   uint64    `json:"seq"`   // the views' checkpoint in it
	Taken time.Time `json:"taken"` // when it was written
	Bytes int64     `json:"bytes"`
}

// Snapshot writes the views as they are now to a snapshot file, replacing
// the last one, and returns what it wrote. The views take no events while
// it is written.
func (s *Store) Snapshot() (SnapshotInfo, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	tmp := filepath.Join(s.dir, "snapshot.tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot: %w", err)
	}
	defer os.Remove(tmp)
	s.applyMu.Lock()
	s.dbMu.RLock()
	seq := s.Applied()
	_, err = s.db.Backup(f, 0)
	s.dbMu.RUnlock()
	s.applyMu.Unlock()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	old, _, hadOld := lastSnapshot(s.dir)
	if err == nil {
		err = os.Rename(tmp, snapshotPath(s.dir, seq))
	}
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot: %w", err)
	}
	if hadOld && old != snapshotPath(s.dir, seq) {
		_ = os.Remove(old)
	}
	info, _, err := s.SnapshotInfo()
	if err == nil {
		s.log.Info("views snapshot written", "seq", info.Seq, "bytes", info.Bytes)
	}
	return info, err
}

// SnapshotInfo describes the last snapshot; ok is false when there is
// none.
func (s *Store) SnapshotInfo() (info SnapshotInfo, ok bool, err error) {
	path, seq, ok := lastSnapshot(s.dir)
	if !ok {
		return SnapshotInfo{}, false, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return SnapshotInfo{}, false, fmt.Errorf("snapshot: %w", err)
	}
	return SnapshotInfo{Seq: seq, Taken: fi.ModTime(), Bytes: fi.Size()}, true, nil
}

// loadSnapshot loads the snapshot, if there is one of this layout and
// not past target, into db (empty) and returns its checkpoint (zero: none
// was loaded).
func (s *Store) loadSnapshot(db *badgerdb.DB, target uint64) (uint64, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	path, _, ok := lastSnapshot(s.dir)
	if !ok {
		return 0, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := db.Load(f, 256); err != nil {
		return 0, fmt.Errorf("load snapshot: %w", err)
	}
	probe := &Store{db: db}
	l, err := probe.readLayout()
	if err != nil {
		return 0, err
	}
	seq, err := probe.readCheckpoint()
	if err != nil {
		return 0, err
	}
	if l != layout || seq > target {
		// Made by another version, or ahead of this log (another
		// deployment's): not these views' past.
		s.log.Warn("views snapshot not used", "layout", l, "seq", seq, "log_last", target)
		return 0, errSnapshotUnusable
	}
	return seq, nil
}

var errSnapshotUnusable = errors.New("snapshot unusable")

// tail applies the events after from up to target to db, in batches,
// and returns how many it read.
func tail(ctx context.Context, db *badgerdb.DB, src Source, from, target uint64) (int, error) {
	if from >= target {
		return 0, nil
	}
	read := 0
	batch := make([]item, 0, maxBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := applyInto(db, batch)
		batch = batch[:0]
		return err
	}
	err := src.FollowRaw(ctx, eventlog.FollowOptions{From: from + 1, Batch: 8192}, func(seq uint64, data []byte) error {
		read++
		e, dead := decodeOrDead(seq, data)
		batch = append(batch, item{seq: seq, env: e, dead: dead})
		if len(batch) == maxBatch || seq >= target {
			if err := flush(); err != nil {
				return err
			}
		}
		if seq >= target {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		if err == nil {
			err = errors.New("the log ended before its last event")
		}
		return read, err
	}
	return read, nil
}

// applyInto applies a batch to db in one transaction, halving it when it
// is too big for one.
func applyInto(db *badgerdb.DB, batch []item) error {
	err := db.Update(func(txn *badgerdb.Txn) error { return applyTxn(txn, batch) })
	if errors.Is(err, badgerdb.ErrTxnTooBig) && len(batch) > 1 {
		half := len(batch) / 2
		if err := applyInto(db, batch[:half]); err != nil {
			return err
		}
		return applyInto(db, batch[half:])
	}
	return err
}

// SnapshotHealth reports the last snapshot's sequence (zero: none) and
// time, and what the last rebuild read and took (zero: none since the
// store opened).
func (s *Store) SnapshotHealth() (seq uint64, taken time.Time, rebuildRead int64, rebuildTook time.Duration) {
	info, _, _ := s.SnapshotInfo()
	return info.Seq, info.Taken, s.TailRead.Load(), time.Duration(s.rebuildTook.Load())
}

// Snapshot policy: while Run runs, a snapshot is written every
// SnapshotEvery when the views moved at least SnapshotMinEvents past the
// last one, and when Run stops.
var (
	SnapshotEvery     = 10 * time.Minute
	SnapshotMinEvents = uint64(10_000)
)

func (s *Store) snapEvery() time.Duration {
	if SnapshotEvery <= 0 {
		return time.Hour
	}
	return SnapshotEvery
}

// snapshotIfBehind writes a snapshot when the views are more than min
// events past the last one.
func (s *Store) snapshotIfBehind(min uint64) {
	info, _, err := s.SnapshotInfo()
	if err != nil || s.Applied() <= info.Seq+min || s.Applied() == 0 {
		return
	}
	if _, err := s.Snapshot(); err != nil {
		s.log.Warn("views snapshot", "err", err)
	}
}
