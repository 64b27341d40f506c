package files_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/files"
)

// A reader that may not touch the object store gets a file piece by piece
// through Chunks and writes it verified; sequential pieces continue one
// read of the object, and any offset can be asked for.
func TestRemoteFetchThroughChunks(t *testing.T) {
	ctx := context.Background()
	s := open(t, 0)
	data := make([]byte, 2*files.ChunkSize+12345)
	for i := range data {
		data[i] = byte(i*31 + i/7)
	}
	ref, err := s.Put(ctx, "t", "weights.bin", strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	chunks := files.NewChunks(s)
	var calls atomic.Int32
	remote := files.Remote{Get: func(ctx context.Context, task string, ref events.FileRef, off int64) ([]byte, error) {
		calls.Add(1)
		return chunks.Read(ctx, "c1", task, ref, off)
	}}
	dir := t.TempDir()
	if err := remote.Fetch(ctx, "t", ref, dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "weights.bin"))
	if err != nil || string(got) != string(data) {
		t.Fatalf("fetched %d bytes, %v; want %d equal bytes", len(got), err, len(data))
	}
	if calls.Load() != 3 {
		t.Fatalf("%d requests for %d bytes, want 3", calls.Load(), len(data))
	}
	// Any offset, for a reader that resumes.
	b, err := chunks.Read(ctx, "c2", "t", ref, files.ChunkSize+5)
	if err != nil || string(b) != string(data[files.ChunkSize+5:2*files.ChunkSize+5]) {
		t.Fatalf("read at an offset: %d bytes, %v", len(b), err)
	}
	if _, err := chunks.Read(ctx, "c2", "t", ref, ref.Size+1); err == nil {
		t.Fatal("an offset past the end was served")
	}
	// A file whose stored bytes are not those of the ref is refused by the
	// reader's check, and nothing is left behind.
	bad := ref
	bad.Size += 10
	if err := remote.Fetch(ctx, "t", bad, t.TempDir()); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("short object: %v, want a digest mismatch", err)
	}
	bad = ref
	bad.Size -= 10
	dir = t.TempDir()
	if err := remote.Fetch(ctx, "t", bad, dir); err == nil || !strings.Contains(err.Error(), "digest mismatch") {
		t.Fatalf("long object: %v, want a digest mismatch", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("a refused fetch left %v", left)
	}
}
