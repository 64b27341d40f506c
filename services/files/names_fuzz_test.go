package files_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/files"
)

// fileNameSeeds are names that have led files out of the directories
// meant for them elsewhere, and a few ordinary ones.
var fileNameSeeds = []string{
	"..", "../x", "/etc/passwd", "a/../../x", "link/x", "abs/x", "link", "abs", "link/../x", "a\x00b",
	strings.Repeat("a", 5000), "a\\b", "..\\x", "./a", "a/.", "a//b", "a/", "", ".", "...", "ok.py", "dir/ok.py",
	"models/net.py", "x.flmngr-partial", "\xff\xfe", "caf\xc3", "a\nb", " ", "%2e%2e/x", "\u202e.py", "~/x",
}

// FuzzWriteVerified writes a file of any name and content into a task
// directory holding two symbolic links out of it (link -> ../outside and
// abs -> the absolute path of outside). It proves that WriteVerified never
// panics; that it refuses every name ValidateFileName refuses, with that
// invalid-argument error; that a valid name with the right bytes is
// written, except through the links; that whatever happens nothing is
// created, changed or removed outside the task directory, three levels up
// included; that a success leaves exactly the named file with the content
// and a failure (a wrong digest included) no file at all; and that no
// .flmngr-partial file is ever left behind.
func FuzzWriteVerified(f *testing.F) {
	for _, name := range fileNameSeeds {
		f.Add(name, []byte("print('hi')\n"), false)
	}
	f.Add("ok.py", []byte{}, false)
	f.Add(strings.Repeat("a", 240), []byte("x"), false)
	f.Add("ok.py", []byte("print('hi')\n"), true)
	f.Add("dir/ok.py", bytes.Repeat([]byte{0}, 70000), true)
	f.Fuzz(func(t *testing.T, name string, content []byte, corrupt bool) {
		base := t.TempDir()
		root := filepath.Join(base, "up1", "up2")
		task, outside := filepath.Join(root, "task"), filepath.Join(root, "outside")
		for _, d := range []string{task, outside} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for p, data := range map[string]string{filepath.Join(outside, "keep.txt"): "keep", filepath.Join(root, "sibling.txt"): "sibling"} {
			if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Symlink("../outside", filepath.Join(task, "link")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(task, "abs")); err != nil {
			t.Fatal(err)
		}
		before := treeOf(t, base, task)

		sum := sha256.Sum256(content)
		ref := events.FileRef{Name: name, Size: int64(len(content)), SHA256: hex.EncodeToString(sum[:])}
		calls := 0
		err := files.WriteVerified(task, ref, func(w io.Writer) (int64, error) {
			calls++
			data := content
			if corrupt {
				data = append(bytes.Clone(content), '!')
			}
			n, err := w.Write(data)
			return int64(n), err
		})

		if after := treeOf(t, base, task); after != before {
			t.Fatalf("WriteVerified(%q, corrupt %v) = %v changed what is outside the task directory:\nbefore:\n%s\nafter:\n%s", name, corrupt, err, before, after)
		}
		verr := commands.ValidateFileName("files", name)
		first, _, _ := strings.Cut(name, "/")
		throughLink := strings.Contains(name, "/") && (first == "link" || first == "abs")
		switch {
		case verr != nil && err == nil:
			t.Fatalf("WriteVerified(%q) wrote a file whose name ValidateFileName refuses: %v", name, verr)
		case verr != nil && (fault.KindOf(err) != fault.KindInvalid || err.Error() != verr.Error()):
			t.Fatalf("WriteVerified(%q) = %v (kind %s), want the invalid-argument error %q", name, err, fault.KindOf(err), verr)
		case verr != nil && calls != 0:
			t.Fatalf("WriteVerified(%q) asked for the bytes of a file whose name it refuses", name)
		case err != nil && strings.TrimSpace(err.Error()) == "":
			t.Fatalf("WriteVerified(%q) failed with an empty error message", name)
		case corrupt && err == nil:
			t.Fatalf("WriteVerified(%q) accepted bytes that do not match the digest", name)
		case corrupt && verr == nil && !throughLink && !errors.Is(err, files.ErrDigestMismatch):
			t.Fatalf("WriteVerified(%q) with bytes that do not match the digest = %v, want %v", name, err, files.ErrDigestMismatch)
		case verr == nil && !corrupt && !throughLink && err != nil:
			t.Fatalf("WriteVerified(%q) of a valid name with the right bytes failed: %v", name, err)
		case throughLink && err == nil:
			t.Fatalf("WriteVerified(%q) wrote through a symbolic link out of the task directory", name)
		}

		// What is left in the task directory: the links (or the file that
		// replaced one), directories, and the file only on success.
		err2 := filepath.WalkDir(task, func(p string, d fs.DirEntry, werr error) error {
			if werr != nil {
				return werr
			}
			rel, _ := filepath.Rel(task, p)
			rel = filepath.ToSlash(rel)
			switch {
			case strings.Contains(path.Base(rel), ".flmngr-partial") && !(err == nil && rel == name):
				t.Fatalf("WriteVerified(%q) = %v left %s behind", name, err, rel)
			case d.Type().IsRegular() && !(err == nil && rel == name):
				t.Fatalf("WriteVerified(%q) = %v left a file %s in the task directory", name, err, rel)
			case d.Type()&fs.ModeSymlink != 0 && rel != "link" && rel != "abs":
				t.Fatalf("WriteVerified(%q) = %v created a symbolic link %s", name, err, rel)
			}
			return nil
		})
		if err2 != nil {
			t.Fatal(err2)
		}
		if err != nil {
			return
		}
		p := filepath.Join(task, filepath.FromSlash(name))
		if !strings.HasPrefix(p, task+string(filepath.Separator)) || !filepath.IsLocal(name) {
			t.Fatalf("WriteVerified accepted %q, which is not local to the task directory (%s)", name, p)
		}
		info, err := os.Lstat(p)
		if err != nil || !info.Mode().IsRegular() {
			t.Fatalf("WriteVerified(%q) succeeded but %s is not a regular file: %v %v", name, p, info, err)
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, content) {
			t.Fatalf("WriteVerified(%q) wrote %d bytes (%v), want the %d bytes given", name, len(got), err, len(content))
		}
	})
}

// treeOf describes everything under base except the skip directory:
// every entry's path, type and mode, a file's digest, a link's target.
func treeOf(t *testing.T, base, skip string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		fmt.Fprintf(&b, "%s %v", rel, info.Mode())
		switch {
		case info.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %x", sha256.Sum256(data))
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " -> %s", target)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", base, err)
	}
	return b.String()
}

// FuzzValidateFileName proves that the names ValidateFileName accepts are
// safe to join to a directory: not empty, at most 255 bytes of valid
// UTF-8, relative, clean, without NUL, backslash or ".." element, local
// (filepath.IsLocal) and joined under the directory; and that every name
// it refuses gets an invalid-argument error on the field it was given,
// with a message.
func FuzzValidateFileName(f *testing.F) {
	for _, name := range fileNameSeeds {
		f.Add(name)
	}
	f.Add(strings.Repeat("a", 255))
	f.Add(strings.Repeat("é", 128))
	f.Add("a/b/c/d/e/f/g/h")
	const dir = "/srv/flmngr/tasks/4fe5"
	f.Fuzz(func(t *testing.T, name string) {
		err := commands.ValidateFileName("files", name)
		if err != nil {
			e := fault.AsError(err)
			if e.Kind != fault.KindInvalid || e.Field != "files" || strings.TrimSpace(e.Message) == "" {
				t.Fatalf("ValidateFileName(%q) = %#v, want an invalid-argument error on files with a message", name, e)
			}
			return
		}
		switch {
		case name == "" || name == ".":
			t.Fatalf("ValidateFileName accepted %q, which names no file", name)
		case len(name) > 255:
			t.Fatalf("ValidateFileName accepted a %d-byte name", len(name))
		case !utf8.ValidString(name):
			t.Fatalf("ValidateFileName accepted %q, which is not valid UTF-8", name)
		case strings.ContainsAny(name, "\x00\\"):
			t.Fatalf("ValidateFileName accepted %q, which holds a NUL or a backslash", name)
		case path.IsAbs(name) || filepath.IsAbs(name):
			t.Fatalf("ValidateFileName accepted %q, which is absolute", name)
		case path.Clean(name) != name:
			t.Fatalf("ValidateFileName accepted %q, which is not clean", name)
		case !filepath.IsLocal(name):
			t.Fatalf("ValidateFileName accepted %q, which filepath.IsLocal refuses", name)
		}
		for _, elem := range strings.Split(name, "/") {
			if elem == ".." || elem == "." || elem == "" {
				t.Fatalf("ValidateFileName accepted %q, which has a %q element", name, elem)
			}
		}
		if joined := filepath.Join(dir, filepath.FromSlash(name)); !strings.HasPrefix(joined, dir+"/") {
			t.Fatalf("ValidateFileName accepted %q, but it joins to %s, outside %s", name, joined, dir)
		}
	})
}
