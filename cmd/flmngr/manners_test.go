package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliRun runs the CLI against the site as the operator, or with the
// credentials given, and returns its exit code, stdout and stderr.
func (s *site) cliRun(creds string, args ...string) (int, string, string) {
	s.t.Helper()
	if creds == "" {
		creds = filepath.Join(s.data, "operator.creds")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), "FLMNGR_NATS=nats://"+s.listen, "FLMNGR_CREDS="+creds)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return code, out.String(), errOut.String()
}

// The CLI's manners: usage once, a flag mistake in one line, refusals at
// once and naming who and what, not found is status 1, tables that say
// what they show.
func TestCLIManners(t *testing.T) {
	s := newSite(t)
	s.startUp()

	code, out, errOut := s.cliRun("", "task", "get", "--help")
	if code != 0 || strings.Count(out, "Usage: flmngr task get") != 1 || errOut != "" {
		t.Fatalf("--help: exit %d, usage %d times:\n%s%s", code, strings.Count(out, "Usage:"), out, errOut)
	}
	code, out, errOut = s.cliRun("", "task", "create", "x", "--hots", "h")
	if code != 2 || out != "" || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "-hots (see --help)") {
		t.Fatalf("a bad flag: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	for _, args := range [][]string{{"task", "get", "nope"}, {"timeline", "nope"}, {"events", "--task", "nope"}, {"user", "get", "nope"}, {"logs", "nope"}, {"task", "wait", "nope"}} {
		code, _, errOut := s.cliRun("", args...)
		if code != 1 || !strings.Contains(errOut, "not found") {
			t.Fatalf("%v: exit %d, %q; want 1 and not found", args, code, errOut)
		}
	}
	if code, _, errOut := s.cliRun("", "task", "list", "--status", "bogus"); code != 1 || !strings.Contains(errOut, `unknown status "bogus"`) {
		t.Fatalf("a bogus status: exit %d, %q", code, errOut)
	}

	// Commands are split as a shell would, kept and shown as argv.
	s.cli("task", "create", "sh1", "--host", "127.0.0.1", "--port", "9", "--server-cmd", `sh -c 'echo hi'`)
	if out := s.cli("task", "get", "sh1"); !strings.Contains(out, `["sh", "-c", "echo hi"]`) {
		t.Fatalf("the command is not shown as its argv:\n%s", out)
	}
	if code, _, errOut := s.cliRun("", "task", "create", "sh2", "--host", "h", "--port", "9", "--server-cmd", `echo $HOME`); code != 1 || !strings.Contains(errOut, "$HOME is not expanded") {
		t.Fatalf("an expansion: exit %d, %q", code, errOut)
	}

	// A registered client with no agent was never seen; match says why not.
	s.cli("user", "register", "lonely", "--sensors", "gps", "--data-qnt", "5")
	if out := s.cli("user", "list"); !strings.Contains(out, "never seen") || !strings.Contains(out, "ONLINE") || !strings.Contains(out, "QUARANTINED") {
		t.Fatalf("user list:\n%s", out)
	}
	if out := s.cli("match", "--criterion", `"camera" in sensors && data_qnt > 100`); !strings.Contains(out, `data_qnt=5 sensors=["gps"]`) {
		t.Fatalf("match does not say why not:\n%s", out)
	}

	// A client's identity may not act as an operator: refused at once,
	// saying who and what.
	s.startAgent("edge", "")
	creds := filepath.Join(s.dir, "edge.creds")
	start := time.Now()
	code, _, errOut = s.cliRun(creds, "task", "start", "sh1")
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("a refused command took %s", took)
	}
	if code != 1 || !strings.Contains(errOut, `the identity "edge" (`+creds+`) may not`) {
		t.Fatalf("a client's credentials starting a task: exit %d, %q", code, errOut)
	}
	if st := s.task("sh1"); st.Status != "idle" {
		t.Fatalf("the refused start changed the task: %s", st.Status)
	}
}
