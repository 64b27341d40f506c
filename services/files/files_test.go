package files_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog/jstest"
	"github.com/flmngr/flmngr/services/files"
)

func openB(b *testing.B) *files.Store { return open(b, 0) }

func open(t testing.TB, max int64) *files.Store {
	t.Helper()
	log := jstest.Log(t)
	s, err := files.Open(context.Background(), log.JetStream(), 1, max)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPutFetchRoundTrip(t *testing.T) {
	ctx := context.Background()
	s := open(t, 0)
	ref, err := s.Put(ctx, "4fe5", "models/net.py", strings.NewReader("print('hi')\n"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("print('hi')\n"))
	if ref.SHA256 != hex.EncodeToString(sum[:]) || ref.Size != 12 || ref.Name != "models/net.py" {
		t.Fatalf("ref %+v", ref)
	}
	if err := s.Verify(ctx, "4fe5", ref); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := s.Fetch(ctx, "4fe5", ref, dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "models", "net.py"))
	if err != nil || string(got) != "print('hi')\n" {
		t.Fatalf("fetched %q, %v", got, err)
	}
	// Another task does not see this task's files.
	if err := s.Verify(ctx, "other", ref); fault.KindOf(err) != fault.KindNotFound {
		t.Fatalf("verify under another task: %v", err)
	}
}

func TestFetchRefusesBadBytesAndLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s := open(t, 0)
	good, err := s.Put(ctx, "t", "client.py", strings.NewReader("good"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// A reference whose size does not match what is stored.
	bad := good
	bad.Size = 3
	if err := s.Fetch(ctx, "t", bad, dir); !errors.Is(err, files.ErrDigestMismatch) {
		t.Fatalf("wrong size: %v", err)
	}
	// A reference to content that was never stored.
	other := events.FileRef{Name: "client.py", Size: 4, SHA256: strings.Repeat("0", 64)}
	if err := s.Fetch(ctx, "t", other, dir); fault.KindOf(err) != fault.KindNotFound {
		t.Fatalf("unknown content: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("a failed fetch left %v", entries)
	}
}

func TestNamesCannotEscapeTheTaskDirectory(t *testing.T) {
	ctx := context.Background()
	s := open(t, 0)
	for _, name := range []string{"../x", "/etc/passwd", "a/../../x", "a\x00b", ""} {
		if _, err := s.Put(ctx, "t", name, strings.NewReader("x")); fault.KindOf(err) != fault.KindInvalid {
			t.Errorf("Put(%q): %v", name, err)
		}
	}
	ref, err := s.Put(ctx, "t", "evil/x.py", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := s.Fetch(ctx, "t", ref, dir); err == nil {
		t.Fatal("fetch followed a symlink out of the task directory")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("wrote outside the task directory: %v", entries)
	}
}

func TestSizeLimit(t *testing.T) {
	s := open(t, 10)
	if _, err := s.Put(context.Background(), "t", "big.bin", strings.NewReader(strings.Repeat("x", 11))); fault.KindOf(err) != fault.KindInvalid {
		t.Fatalf("oversized file: %v", err)
	}
	if _, err := s.Put(context.Background(), "t", "ok.bin", strings.NewReader(strings.Repeat("x", 10))); err != nil {
		t.Fatal(err)
	}
}

func TestLargeFileSpansChunks(t *testing.T) {
	ctx := context.Background()
	s := open(t, 0)
	data := make([]byte, 3<<20+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	ref, err := s.Put(ctx, "t", "weights.bin", strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := s.Fetch(ctx, "t", ref, dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "weights.bin"))
	if err != nil || string(got) != string(data) {
		t.Fatalf("fetched %d bytes, %v; want %d equal bytes", len(got), err, len(data))
	}
}

func TestMaterializeKeepsOnlyVerifiedFiles(t *testing.T) {
	ctx := context.Background()
	s := open(t, 0)
	a, _ := s.Put(ctx, "t", "a.py", strings.NewReader("A"))
	b, _ := s.Put(ctx, "t", "sub/b.py", strings.NewReader("B"))
	dir := t.TempDir()
	if err := s.Materialize(ctx, "t", []events.FileRef{a, b}, dir); err != nil {
		t.Fatal(err)
	}
	// A run leaves output behind and a file is altered on disk.
	os.WriteFile(filepath.Join(dir, "output.txt"), []byte("left over"), 0o644)
	os.WriteFile(filepath.Join(dir, "a.py"), []byte("tampered"), 0o644)
	if err := s.Materialize(ctx, "t", []events.FileRef{a, b}, dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a.py")); string(got) != "A" {
		t.Fatalf("a.py = %q after materialize", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "output.txt")); !os.IsNotExist(err) {
		t.Fatal("a file that is not part of the task was kept")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "sub", "b.py")); string(got) != "B" {
		t.Fatalf("sub/b.py = %q", got)
	}
}

// TestDelete removes a stored file: it is gone, another task's file with
// the same bytes is not, and deleting it again is no error.
func TestDelete(t *testing.T) {
	ctx := context.Background()
	s := open(t, 0)
	ref, err := s.Put(ctx, "t1", "a.py", strings.NewReader("a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "t2", "a.py", strings.NewReader("a\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "t1", ref.SHA256); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(ctx, "t1", ref); fault.KindOf(err) != fault.KindNotFound {
		t.Fatalf("verify after delete: %v", err)
	}
	if err := s.Verify(ctx, "t2", ref); err != nil {
		t.Fatalf("the other task's file: %v", err)
	}
	if err := s.Delete(ctx, "t1", ref.SHA256); err != nil {
		t.Fatalf("delete again: %v", err)
	}
	if _, err := s.Put(ctx, "t1", "a.py", strings.NewReader("a\n")); err != nil {
		t.Fatalf("put after delete: %v", err)
	}
	if err := s.Verify(ctx, "t1", ref); err != nil {
		t.Fatalf("verify after put again: %v", err)
	}
}
