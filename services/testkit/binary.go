package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// buildFlmngr builds cmd/flmngr into a temp dir, once per test process.
var buildFlmngr = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "flmngr-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "flmngr")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/flmngr/flmngr/cmd/flmngr").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build flmngr: %v\n%s", err, out)
	}
	return bin, nil
})

// Binary returns the path of the flmngr binary, built from this
// repository's sources the first time a test of the process asks.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// BuildBinary is Binary for callers without a testing.TB (a TestMain);
// the error says why the build failed, with the compiler's output.
func BuildBinary() (string, error) { return buildFlmngr() }
