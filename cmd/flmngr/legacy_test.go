package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/testkit"
)

// TestLegacyModeIsLoudAndNarrow: flmngr up says in capitals which
// networks legacy mode opens, and refuses networks and origins it cannot
// take, with one line.
func TestLegacyModeIsLoudAndNarrow(t *testing.T) {
	bin := testkit.Binary(t)
	up := exec.Command(bin, "up", "--data", filepath.Join(t.TempDir(), "data"), "--listen", testkit.FreeAddr(t), "--http", "127.0.0.1:0",
		"--legacy-open", "127.0.0.1/8, 10.1.0.0/16")
	up.Env = append(os.Environ(), "FLMNGR_LEGACY_OPEN=", "FLMNGR_CORS_ORIGINS=")
	var out syncBuf
	up.Stdout = &out
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = up.Process.Kill(); _ = up.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "Stop with Ctrl-C") {
		if time.Now().After(deadline) {
			t.Fatalf("flmngr up did not start: %s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "!! LEGACY MODE: anyone on 127.0.0.0/8, 10.1.0.0/16 may create, start, stop and upload tasks") {
		t.Fatalf("no legacy line:\n%s", out.String())
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--legacy-open", "0.0.0.0/0"}, `--legacy-open: network "0.0.0.0/0" is every address`},
		{[]string{"--legacy-open", "example.com"}, `--legacy-open: network "example.com": want an address or a CIDR prefix`},
		{[]string{"--cors-origins", "ftp://x"}, `--cors-origins: origin "ftp://x": want * or scheme://host[:port]`},
		{[]string{"--legacy-open", "10.0.0.0/8", "--http", ""}, "--legacy-open needs the HTTP gateway"},
	} {
		args := append([]string{"up", "--data", filepath.Join(t.TempDir(), "d"), "--listen", testkit.FreeAddr(t)}, c.args...)
		code, stderr := runFlmngr(t, args...)
		if code == 0 || len(strings.Split(strings.TrimSpace(stderr), "\n")) != 1 || !strings.Contains(stderr, c.want) {
			t.Fatalf("%v: exit %d, stderr %q, want one line with %q", c.args, code, stderr, c.want)
		}
	}
}
