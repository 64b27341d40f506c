package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The units' program: the test verifies copies in which it is a program
// that exists here, as systemd-analyze checks that it does.
const program = "/usr/local/bin/flmngr"

var units = []string{"flmngr-cloud.service", "flmngr-agent.service"}

// systemd-analyze verify finds nothing to say of the units as shipped:
// no unknown key, no value it cannot parse, no missing program.
func TestUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed here: the units are not verified (apt-get install systemd)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var paths []string
	for _, name := range units {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte("ExecStart="+program+" ")) {
			t.Fatalf("%s: ExecStart does not run %s", name, program)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bytes.ReplaceAll(b, []byte(program), []byte(self)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, paths...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	// systemd-analyze warns of what it ignores (an unknown key, a bad
	// value) and still exits 0: any word from it is a failure.
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The units keep their hardening: a user of their own, a read-only
// system but for their state directory, no new privileges, and for the
// agent a delegated cgroup for its tasks.
func TestUnitsAreHardened(t *testing.T) {
	common := []string{"DynamicUser=yes", "ProtectSystem=strict", "PrivateTmp=yes", "NoNewPrivileges=yes", "ProtectHome=yes", "CapabilityBoundingSet="}
	for name, want := range map[string][]string{
		"flmngr-cloud.service": append([]string{"StateDirectory=flmngr", "ProtectControlGroups=yes"}, common...),
		"flmngr-agent.service": append([]string{"StateDirectory=flmngr-agent", "Delegate=yes", "EnvironmentFile=/etc/flmngr/agent.env"}, common...),
	} {
		set := settings(t, name)
		for _, kv := range want {
			if !set[kv] {
				t.Errorf("%s lacks %s", name, kv)
			}
		}
	}
	if settings(t, "flmngr-agent.service")["ProtectControlGroups=yes"] {
		t.Error("flmngr-agent.service protects the cgroup tree: the agent cannot make its tasks' cgroups")
	}
}

// settings are the key=value lines of a unit file.
func settings(t *testing.T, name string) map[string]bool {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "[") {
			set[line] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return set
}
