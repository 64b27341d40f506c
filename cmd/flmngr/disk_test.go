package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/storage"
	"github.com/flmngr/flmngr/services/testkit"
)

// On a data volume that fills up, flmngr up refuses commands with
// insufficient_storage (HTTP 507) and raises an alarm, keeps answering
// reads, takes commands again once there is room, and says why it does
// not start on a volume that is too full; nothing acknowledged is lost.
func TestFullDiskRefusesCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: mounts a small tmpfs")
	}
	vol := t.TempDir()
	if err := syscall.Mount("tmpfs", vol, "tmpfs", 0, "size=512m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v): the full-disk test needs root; the watermark is still checked at every start", err)
	}
	defer syscall.Unmount(vol, syscall.MNT_DETACH)
	s := newSite(t)
	s.data = filepath.Join(vol, "data")
	s.upArgs = []string{"--min-free", "128MiB"}
	s.startUp()
	s.cli("task", "create", "before", "--host", "127.0.0.1", "--port", "9")

	filler := filepath.Join(vol, "filler")
	fill := func() {
		t.Helper()
		free, err := storage.Free(vol)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(filler)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 1<<20)
		for left := int64(free) - 64<<20; left > 0; left -= int64(len(buf)) {
			if _, err := f.Write(buf); err != nil {
				t.Fatal(err)
			}
		}
	}
	fill()
	s.waitFor("the alarm", 10*time.Second, func() error {
		if out := s.cli("status"); !strings.Contains(out, "ALARM: the cloud's data volume has") {
			return fmt.Errorf("status: %s", out)
		}
		return nil
	})
	code, _, errOut := s.cliRun("", "task", "create", "during", "--host", "127.0.0.1", "--port", "9")
	if code != 1 || !strings.Contains(errOut, "below its 128 MiB watermark") {
		t.Fatalf("a command on a full volume: exit %d, %q", code, errOut)
	}
	token, err := os.ReadFile(filepath.Join(s.data, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	gw := gatewayURL(t, s)
	req, _ := http.NewRequest("POST", gw+"/api/v1/tasks", strings.NewReader(`{"task_id":"rest","host":"h","port":1}`))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("REST create on a full volume: %d, want 507", resp.StatusCode)
	}
	if out := s.cli("task", "list"); !strings.Contains(out, "before") {
		t.Fatalf("reads stopped on a full volume:\n%s", out)
	}

	os.Remove(filler)
	s.waitFor("commands taken again", 10*time.Second, func() error {
		code, _, errOut := s.cliRun("", "task", "create", "after", "--host", "127.0.0.1", "--port", "9")
		if code != 0 {
			return fmt.Errorf("exit %d: %s", code, errOut)
		}
		return nil
	})

	s.stopUp()
	fill()
	bin, _ := testkit.BuildBinary()
	out, err := exec.Command(bin, "up", "--data", s.data, "--listen", s.listen, "--http", "", "--min-free", "128MiB").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "below the 128 MiB the cloud needs to start") || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Fatalf("a start on a full volume: %v\n%s", err, out)
	}
	os.Remove(filler)
	s.startUp()
	for _, id := range []string{"before", "after"} {
		s.cli("task", "get", id)
	}
}

// gatewayURL reads where a site's gateway listens from flmngr up's
// output.
func gatewayURL(t *testing.T, s *site) string {
	t.Helper()
	for _, line := range strings.Split(s.upOut.String(), "\n") {
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "HTTP:  "); ok {
			u, _, _ = strings.Cut(u, " ")
			return u
		}
	}
	t.Fatalf("no HTTP address in flmngr up's output:\n%s", s.upOut.String())
	return ""
}
