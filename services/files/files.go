package files

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
)

// Bucket is the object store holding task files.
const Bucket = "FLMNGR_FILES"

// DefaultMaxSize bounds one task file.
const DefaultMaxSize = 64 << 20

// ErrDigestMismatch is returned when stored bytes do not match the digest
// an event recorded.
var ErrDigestMismatch = errors.New("digest mismatch")

// Store is the task file store.
type Store struct {
	nc      *nats.Conn
	obs     jetstream.ObjectStore
	maxSize int64
}

// Open creates or updates the object store; the cloud calls it.
func Open(ctx context.Context, js jetstream.JetStream, replicas int, maxSize int64) (*Store, error) {
	replicas = cmp.Or(replicas, 1)
	maxSize = cmp.Or(maxSize, DefaultMaxSize)
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      Bucket,
		Description: "flmngr task files, by task and SHA-256",
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("task file store: %w", err)
	}
	return &Store{nc: js.Conn(), obs: obs, maxSize: maxSize}, nil
}

// Attach uses the existing object store; agents and the CLI call it.
func Attach(ctx context.Context, js jetstream.JetStream) (*Store, error) {
	obs, err := js.ObjectStore(ctx, Bucket)
	if err != nil {
		return nil, fmt.Errorf("task file store: %w", err)
	}
	return &Store{nc: js.Conn(), obs: obs, maxSize: DefaultMaxSize}, nil
}

// MaxSize is the largest file the store takes.
func (s *Store) MaxSize() int64 { return s.maxSize }

func objectName(task, sha string) string { return task + "/" + sha }

// Put stores a file of a task and returns its reference. A file already
// stored with the same content is not sent again.
func (s *Store) Put(ctx context.Context, task, name string, r io.Reader) (events.FileRef, error) {
	if err := commands.ValidateFileName("files", name); err != nil {
		return events.FileRef{}, err
	}
	if !events.ValidID(task) {
		return events.FileRef{}, fault.Invalid("task_id", "invalid task id %q", task)
	}
	data, err := io.ReadAll(io.LimitReader(r, s.maxSize+1))
	if err != nil {
		return events.FileRef{}, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > s.maxSize {
		return events.FileRef{}, fault.Invalid("files", "file %s is larger than %d bytes", name, s.maxSize)
	}
	sum := sha256.Sum256(data)
	ref := events.FileRef{Name: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
	if s.Verify(ctx, task, ref) == nil {
		return ref, nil
	}
	if _, err := s.obs.PutBytes(ctx, objectName(task, ref.SHA256), data); err != nil {
		return events.FileRef{}, fault.Unavailable(err, "store %s", name)
	}
	return ref, nil
}

// Delete removes the object holding the file of a task with digest sha,
// whatever names refer to it: callers delete only what no recorded file
// of the task references (what a failed upload stored, say). An object
// that is not there is no error.
func (s *Store) Delete(ctx context.Context, task, sha string) error {
	err := s.obs.Delete(ctx, objectName(task, sha))
	if err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fault.Unavailable(err, "delete file %s of task %s", sha, task)
	}
	return nil
}

// Verify checks that a file is stored with the size and digest of ref.
func (s *Store) Verify(ctx context.Context, task string, ref events.FileRef) error {
	info, err := s.obs.GetInfo(ctx, objectName(task, ref.SHA256))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fault.NotFound("file %s of task %s was never uploaded", ref.Name, task)
	}
	if err != nil {
		return fault.Unavailable(err, "file store")
	}
	digest, err := hex.DecodeString(ref.SHA256)
	if err != nil {
		return fault.Invalid("files", "bad digest of %s", ref.Name)
	}
	if uint64(ref.Size) != info.Size || info.Digest != "SHA-256="+base64.URLEncoding.EncodeToString(digest) {
		return fmt.Errorf("file %s of task %s: %w", ref.Name, task, ErrDigestMismatch)
	}
	return nil
}

// Fetch writes a file of a task into dir, creating directories under it as
// its name needs. The bytes are checked against ref while they are
// written to a temporary file, which takes the file's name only when they
// match: a mismatch leaves nothing behind.
func (s *Store) Fetch(ctx context.Context, task string, ref events.FileRef, dir string) error {
	return WriteVerified(dir, ref, func(w io.Writer) (int64, error) {
		info, err := s.obs.GetInfo(ctx, objectName(task, ref.SHA256))
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return 0, fault.NotFound("file %s of task %s is not in the file store", ref.Name, task)
		}
		if err != nil {
			return 0, err
		}
		return s.read(ctx, info, w, ref.Size)
	})
}

// WriteVerified writes the file ref names under dir with the bytes copy
// produces, creating directories under dir as its name needs. Everything
// is written through an os.Root on dir, so no name or symbolic link can
// lead a write outside it. The bytes go to a temporary file that takes
// the file's name only when their size and digest match ref: a mismatch
// leaves nothing behind.
func WriteVerified(dir string, ref events.FileRef, copy func(io.Writer) (int64, error)) error {
	if err := commands.ValidateFileRef(ref); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	name := filepath.FromSlash(ref.Name)
	if parent := path.Dir(ref.Name); parent != "." {
		if err := root.MkdirAll(filepath.FromSlash(parent), 0o755); err != nil {
			return fmt.Errorf("fetch %s: %w", ref.Name, err)
		}
	}
	// A short name beside the file's: a name of 255 bytes, the most a
	// directory entry holds, leaves no room for a suffix.
	tmp := filepath.Join(filepath.Dir(name), ".flmngr-partial-"+ref.SHA256[:16])
	_ = root.Remove(tmp) // left by an attempt that was killed
	// Task files are programs: executable, like the scripts they are.
	f, err := root.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", ref.Name, err)
	}
	h := sha256.New()
	n, err := copy(io.MultiWriter(f, h))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = check(ref, n, h)
	}
	if err != nil {
		_ = root.Remove(tmp)
		if fault.KindOf(err) != fault.KindInternal {
			return err
		}
		return fmt.Errorf("fetch %s: %w", ref.Name, err)
	}
	if err := root.Rename(tmp, name); err != nil {
		_ = root.Remove(tmp)
		return fmt.Errorf("fetch %s: %w", ref.Name, err)
	}
	return nil
}

// WriteTo streams a stored file to w, checking its bytes on the way; a
// mismatch is reported after the fact (the bytes are out).
func (s *Store) WriteTo(ctx context.Context, task string, ref events.FileRef, w io.Writer) (int64, error) {
	info, err := s.obs.GetInfo(ctx, objectName(task, ref.SHA256))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, fault.NotFound("file %s of task %s is not in the file store", ref.Name, task)
	}
	if err != nil {
		return 0, err
	}
	h := sha256.New()
	n, err := s.read(ctx, info, io.MultiWriter(w, h), ref.Size)
	if err == nil {
		err = check(ref, n, h)
	}
	return n, err
}

// read copies an object's chunks to w with batched direct gets, which
// costs one request per batch instead of a consumer per object. It stops
// past limit bytes.
func (s *Store) read(ctx context.Context, info *jetstream.ObjectInfo, w io.Writer, limit int64) (int64, error) {
	var n int64
	if info.Size == 0 {
		return 0, nil
	}
	subject := "$O." + Bucket + ".C." + info.NUID
	err := eventlog.DirectScan(ctx, s.nc, "OBJ_"+Bucket, subject, 1, func(_ uint64, msg *nats.Msg) error {
		if n += int64(len(msg.Data)); n > limit {
			return fmt.Errorf("%w: the stored object is larger than %d bytes", ErrDigestMismatch, limit)
		}
		_, err := w.Write(msg.Data)
		return err
	})
	return n, err
}

func check(ref events.FileRef, n int64, h hash.Hash) error {
	want, _ := hex.DecodeString(ref.SHA256)
	if n != ref.Size || !bytes.Equal(h.Sum(nil), want) {
		return fmt.Errorf("%w: got %d bytes with sha256 %x, want %d bytes with %s", ErrDigestMismatch, n, h.Sum(nil), ref.Size, ref.SHA256)
	}
	return nil
}

// Materialize makes dir hold exactly the given files of a task. Files
// already there with the right digest (from an earlier run) are kept
// after their bytes are checked; every other file is removed; missing
// files are fetched and verified.
func (s *Store) Materialize(ctx context.Context, task string, refs []events.FileRef, dir string) error {
	return MaterializeWith(refs, dir, func(ref events.FileRef) error { return s.Fetch(ctx, task, ref, dir) })
}

// MaterializeWith is Materialize with the files fetched by fetch (which
// writes ref into dir, as Fetch and Remote.Fetch do).
func MaterializeWith(refs []events.FileRef, dir string, fetch func(events.FileRef) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	want := make(map[string]events.FileRef, len(refs))
	for _, ref := range refs {
		want[filepath.FromSlash(ref.Name)] = ref
	}
	have := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if ref, ok := want[rel]; ok && d.Type().IsRegular() && sameContent(p, ref) {
			have[rel] = true
			return nil
		}
		return os.Remove(p)
	})
	if err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	for _, ref := range refs {
		if have[filepath.FromSlash(ref.Name)] {
			continue
		}
		if err := fetch(ref); err != nil {
			return err
		}
	}
	return nil
}

// sameContent reports whether the file at p has ref's size and digest.
func sameContent(p string, ref events.FileRef) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, ref.Size+1))
	return err == nil && check(ref, n, h) == nil
}
