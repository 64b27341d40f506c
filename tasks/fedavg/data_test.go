package fedavg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// MNIST is found with no Go toolchain and no download: from the module
// cache the build left, or from $FLMNGR_MNIST.
func TestDataDirNeedsNoToolchain(t *testing.T) {
	t.Setenv("PATH", "") // no go command to run
	t.Setenv("FLMNGR_MNIST", "")
	dir, err := DataDir()
	if err != nil {
		t.Fatalf("with the module cache only: %v", err)
	}
	if !hasMNIST(dir) {
		t.Fatalf("%s lacks the MNIST files", dir)
	}

	own := t.TempDir()
	t.Setenv("FLMNGR_MNIST", own)
	if _, err := DataDir(); err == nil || !strings.Contains(err.Error(), "FLMNGR_MNIST") {
		t.Fatalf("an empty $FLMNGR_MNIST: %v, want an error naming it", err)
	}
	for _, f := range mnistFiles {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(own, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := DataDir(); err != nil || got != own {
		t.Fatalf("$FLMNGR_MNIST with the files: %s %v", got, err)
	}

	t.Setenv("FLMNGR_MNIST", "")
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOPATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	if _, err := DataDir(); err == nil || !strings.Contains(err.Error(), "MNIST not found") {
		t.Fatalf("nowhere to find it: %v", err)
	}
}
