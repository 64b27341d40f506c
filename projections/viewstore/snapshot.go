package viewstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/pb"

	"github.com/flmngr/flmngr/events/eventlog"
)

// A snapshot is a copy of the views as they were at a log sequence (their
// checkpoint is in it), kept beside the generations as a closed Badger
// database: the directory snapshot-<seq>. A rebuild, or a store whose
// views were lost, starts from a copy of it and replays only the events
// after it: the log is still the truth, the snapshot only spares reading
// it all again. A snapshot of another layout is not used.
//
// A store that stops closes its views and copies their files; one that
// runs writes every key of one read transaction to a new database through
// the stream writer, while events go on being applied. Either way the
// copy is of files, not a replay: no event is decoded or folded again.
const snapshotPrefix = "snapshot-"

func snapshotPath(dir string, seq uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%s%020d", snapshotPrefix, seq))
}

// snapshotSeq parses a snapshot directory's name.
func snapshotSeq(name string) (uint64, bool) {
	digits, ok := strings.CutPrefix(name, snapshotPrefix)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	return seq, err == nil
}

// lastSnapshot finds the snapshot directory and its sequence (ok false:
// none).
func lastSnapshot(dir string) (path string, seq uint64, ok bool) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if n, isSnap := snapshotSeq(e.Name()); isSnap && e.IsDir() && (!ok || n > seq) {
			path, seq, ok = filepath.Join(dir, e.Name()), n, true
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

// Snapshot writes the views as they are now to a new snapshot, replacing
// the last one, and returns what it wrote. It reads one transaction, so
// the views go on taking events while it is written.
func (s *Store) Snapshot() (SnapshotInfo, error) {
	return s.takeSnapshot(func(tmp string) (uint64, error) {
		s.dbMu.RLock()
		defer s.dbMu.RUnlock()
		return copyViews(s.db, tmp)
	})
}

// snapshotStopped takes a snapshot of the views by closing them, copying
// their files, and opening them again: what a store that stops does.
func (s *Store) snapshotStopped() (SnapshotInfo, error) {
	return s.takeSnapshot(func(tmp string) (uint64, error) {
		s.dbMu.Lock()
		defer s.dbMu.Unlock()
		seq := s.Applied()
		gen := generationDir(s.dir, s.gen)
		err := s.db.Close()
		if err == nil {
			err = cloneDB(gen, tmp)
		}
		db, oerr := openDB(gen)
		if oerr == nil {
			s.db = db
		}
		return seq, errors.Join(err, oerr)
	})
}

// takeSnapshot has write make a snapshot in a temporary directory and
// return its checkpoint, then keeps it.
func (s *Store) takeSnapshot(write func(tmp string) (uint64, error)) (SnapshotInfo, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	tmp := filepath.Join(s.dir, "snapshot.tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot: %w", err)
	}
	seq, err := write(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return SnapshotInfo{}, fmt.Errorf("snapshot: %w", err)
	}
	return s.keepSnapshot(tmp, seq)
}

// keepSnapshot makes the snapshot written in tmp the store's, and drops
// the one before (and a snapshot file of an older flmngr).
func (s *Store) keepSnapshot(tmp string, seq uint64) (SnapshotInfo, error) {
	old, _, hadOld := lastSnapshot(s.dir)
	path := snapshotPath(s.dir, seq)
	if err := os.RemoveAll(path); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot: %w", err)
	}
	syncDir(s.dir)
	if hadOld && old != path {
		_ = os.RemoveAll(old)
	}
	legacy, _ := filepath.Glob(filepath.Join(s.dir, snapshotPrefix+"*.bak"))
	for _, l := range legacy {
		_ = os.Remove(l)
	}
	info, _, err := s.SnapshotInfo()
	if err == nil {
		s.log.Info("views snapshot written", "seq", info.Seq, "bytes", info.Bytes)
	}
	return info, err
}

// copyViews writes every key of db, as one read transaction sees them, to
// a new database in dir (through the stream writer, which builds its
// tables directly), and returns the checkpoint among them.
func copyViews(db *badgerdb.DB, dir string) (uint64, error) {
	out, err := openDB(dir)
	if err != nil {
		return 0, err
	}
	w, err := newStreamWriter(out)
	if err != nil {
		out.Close()
		return 0, err
	}
	defer w.release()
	txn := db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badgerdb.DefaultIteratorOptions)
	var seq uint64
	for it.Rewind(); it.Valid() && err == nil; it.Next() {
		item := it.Item()
		kv := &pb.KV{Key: item.KeyCopy(nil), Version: 1, StreamId: 1}
		if kv.Value, err = item.ValueCopy(nil); err != nil {
			break
		}
		if m := item.UserMeta(); m != 0 {
			kv.UserMeta = []byte{m}
		}
		if string(kv.Key) == string(checkpointKey) && len(kv.Value) == 8 {
			seq = binary.BigEndian.Uint64(kv.Value)
		}
		err = w.putKV(kv)
	}
	it.Close()
	if err == nil {
		err = w.flush()
	}
	return seq, errors.Join(err, out.Close())
}

// cloneDB copies the closed database in src to dst, file by file. Not as
// hard links: Badger truncates a table file it drops before removing it,
// which would empty every link. The copies go through copy_file_range,
// in the kernel (and cost no space where the file system shares blocks).
func cloneDB(src, dst string) error {
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if e.IsDir() || e.Name() == "LOCK" {
			continue
		}
		if err := copyFile(from, to); err != nil {
			return err
		}
	}
	syncDir(dst)
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	return errors.Join(err, out.Close())
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
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
	info = SnapshotInfo{Seq: seq, Taken: fi.ModTime()}
	entries, _ := os.ReadDir(path)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && !e.IsDir() {
			info.Bytes += fi.Size()
		}
	}
	return info, true, nil
}

// openSnapshot makes dir (a new generation) a copy of the snapshot, if
// there is one of this layout and not past target, opens it and returns
// it with its checkpoint (nil: there is none).
func (s *Store) openSnapshot(dir string, target uint64) (*badgerdb.DB, uint64, error) {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	path, _, ok := lastSnapshot(s.dir)
	if !ok {
		return nil, 0, nil
	}
	if err := cloneDB(path, dir); err != nil {
		return nil, 0, fmt.Errorf("load snapshot: %w", err)
	}
	db, err := openDB(dir)
	if err != nil {
		return nil, 0, fmt.Errorf("load snapshot: %w", err)
	}
	probe := &Store{db: db}
	l, err := probe.readLayout()
	var seq uint64
	if err == nil {
		seq, err = probe.readCheckpoint()
	}
	if err == nil && (l != layout || seq > target) {
		// Made by another version, or ahead of this log (another
		// deployment's): not these views' past.
		s.log.Warn("views snapshot not used", "layout", l, "seq", seq, "log_last", target)
		err = errSnapshotUnusable
	}
	if err != nil {
		db.Close()
		return nil, 0, err
	}
	return db, seq, nil
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

// Snapshot policy: while Run runs, every SnapshotEvery a snapshot is
// written if the views moved far enough past the last one (see
// snapshotIfBehind); and one is taken when Run stops.
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

// snapshotIfBehind writes a snapshot while the views run when they moved
// more than SnapshotMinEvents, and more than a tenth of the log, past the
// last one: a snapshot copies every view, so the copies cost a bounded
// share of what was applied, and a rebuild reads at most about a tenth
// of the log after its snapshot.
func (s *Store) snapshotIfBehind() {
	if !s.behind(SnapshotMinEvents) {
		return
	}
	if _, err := s.Snapshot(); err != nil {
		s.log.Warn("views snapshot", "err", err)
	}
}

// behind tells whether the views moved more than min events, and more
// than a tenth of the log, past the last snapshot.
func (s *Store) behind(min uint64) bool {
	info, _, err := s.SnapshotInfo()
	applied := s.Applied()
	return err == nil && applied > info.Seq+max(min, applied/10)
}

// snapshotOnStop takes a snapshot when the store stops, if the views
// moved more than a tenth of the log past the last one: a copy of the
// views on every stop would make stopping as slow as the views are big.
func (s *Store) snapshotOnStop() {
	if !s.behind(0) {
		return
	}
	if _, err := s.snapshotStopped(); err != nil {
		s.log.Warn("views snapshot", "err", err)
	}
}
