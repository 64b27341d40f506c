package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
)

// runEnrolled runs `flmngr client --enrol` for id and returns the
// running agent's command; out collects what it prints.
func (s *site) runEnrolled(id, token string, extra ...string) (*exec.Cmd, *syncBuf) {
	s.t.Helper()
	out := &syncBuf{}
	args := append([]string{"client", "--id", id, "--nats", "nats://" + s.listen, "--workdir", filepath.Join(s.dir, "agents", id),
		"--sensors", "camera", "--grace", "2s"}, extra...)
	if token != "" {
		args = append(args, "--enrol", token)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "FLMNGR_CREDS=", "FLMNGR_DATA="+filepath.Join(s.dir, "nodata"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.agents[id], s.agentOut[id] = cmd, out
	return cmd, out
}

// A device enrols with a token from `flmngr enrol create`: it makes its
// key itself, keeps the seed in its work directory (0600), reports the
// token's attributes and runs; it starts again without the token. The
// token is refused to a second device, and an expired one is refused
// with the reason. The seed is nowhere in the cloud's data directory or
// the event log.
func TestEnrolADevice(t *testing.T) {
	s := newSite(t)
	s.startUp()
	var tok api.CreateEnrolmentReply
	if err := json.Unmarshal([]byte(s.cli("enrol", "create", "--ttl", "10m", "--attr", "site=ward-7", "--json")), &tok); err != nil {
		t.Fatal(err)
	}
	cmd, out := s.runEnrolled("dev1", tok.Token)
	ctx := context.Background()
	s.waitFor("dev1 online", 30*time.Second, func() error {
		u, err := s.api.User(ctx, "dev1")
		if err != nil || !u.Online {
			return fmt.Errorf("not online: %v", err)
		}
		if u.Attributes.Extra["site"] != "ward-7" {
			return fmt.Errorf("attributes %v", u.Attributes)
		}
		return nil
	})
	if !strings.Contains(out.String(), "client dev1 enrolled with token "+tok.ID) {
		t.Fatalf("the agent did not say it enrolled:\n%s", out.String())
	}
	credsFile := filepath.Join(s.dir, "agents", "dev1", "identity", "client.creds")
	info, err := os.Stat(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v", credsFile, info.Mode().Perm())
	}
	creds, err := auth.ReadCreds(credsFile)
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := creds.Key.Seed()

	// A second device with the same token is refused, with a reason.
	out2, err := exec.Command(s.bin, "client", "--id", "dev2", "--nats", "nats://"+s.listen, "--workdir", filepath.Join(s.dir, "agents", "dev2"),
		"--enrol", tok.Token).CombinedOutput()
	if err == nil || !strings.Contains(string(out2), "enrolment token "+tok.ID+" is used up") {
		t.Fatalf("a second use of the token: %v\n%s", err, out2)
	}
	if _, err := os.Stat(filepath.Join(s.dir, "agents", "dev2", "identity", "client.creds")); err == nil {
		t.Fatal("the refused device kept credentials")
	}

	// An expired token is refused with the time it expired.
	var short api.CreateEnrolmentReply
	if err := json.Unmarshal([]byte(s.cli("enrol", "create", "--ttl", "1s", "--json")), &short); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(short.ExpiresAt) + 100*time.Millisecond) // the clock has to pass it
	out3, err := exec.Command(s.bin, "client", "--id", "dev3", "--nats", "nats://"+s.listen, "--workdir", filepath.Join(s.dir, "agents", "dev3"),
		"--enrol", short.Token).CombinedOutput()
	if err == nil || !strings.Contains(string(out3), "enrolment token "+short.ID+" expired at") {
		t.Fatalf("an expired token: %v\n%s", err, out3)
	}

	// The enrolled device starts again without the token.
	s.signalAgent("dev1", 15)
	if cmd.ProcessState == nil {
		t.Fatal("dev1 did not stop")
	}
	_, out = s.runEnrolled("dev1", "")
	s.waitFor("dev1 connected again", 30*time.Second, func() error {
		if !strings.Contains(out.String(), "client dev1 connected") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	s.signalAgent("dev1", 15)

	// The seed is nowhere the cloud keeps anything, nor in what the
	// agent printed.
	evs := s.cli("events", "--json")
	if !strings.Contains(evs, creds.PublicKey()) || !strings.Contains(evs, "enrolment.used.v1") {
		t.Fatalf("the enrolment is not in the log:\n%s", evs)
	}
	for _, where := range []string{evs, s.agentOut["dev1"].String(), s.upOut.String()} {
		if strings.Contains(where, string(seed)) || strings.Contains(where, tok.Token) {
			t.Fatal("the device's seed or the token was printed or recorded")
		}
	}
	s.stopUp()
	err = filepath.WalkDir(s.data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, seed) || bytes.Contains(b, []byte(tok.Token)) {
			return fmt.Errorf("%s holds the device's seed or the token", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
