package testkit

import (
	"os"
	"os/exec"
	"testing"
)

// Chromium finds the browser for the browser tests: $FLMNGR_CHROMIUM, or
// chromium in PATH. A missing browser skips the test, unless
// FLMNGR_BROWSER_TESTS=required (as in CI), where it fails.
func Chromium(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FLMNGR_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FLMNGR_BROWSER_TESTS") == "required" {
		t.Fatal("no chromium found and browser tests are required (apt-get install chromium)")
	}
	t.Skip("no chromium found: install Debian's chromium to run the browser tests")
	return ""
}
