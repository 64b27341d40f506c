package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/testkit"
)

// The README and the documents under docs/ are executable: every ```sh
// block runs, as written, in a copy of the repository, with a temporary
// data directory and free ports given through the documented variables
// ($FLMNGR_DATA, $FLMNGR_LISTEN, $FLMNGR_NATS, $FLMNGR_HTTP). An HTML
// comment right before a block says how to run it:
//
//	<!-- run: background until "text" -->  keep it running (a server, an
//	                                       agent) once its output holds text
//	<!-- run: stop -->                     first stop what runs in the background
//	                                       (stop, background until "…" does both)
//	<!-- run: fails -->                    it must fail
//	<!-- run: check -->                    a ```console transcript: each
//	                                       "$ command" runs and prints what
//	                                       follows it ("…" matches anything)
//	<!-- run: skip because … -->           not run, for the reason given
//
// Other blocks (```console without check, ```text, plain ```) are shown,
// not run. What runs in the background is stopped with SIGINT, as Ctrl-C
// would, at the end of each document.
func TestDocumentsRunAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the documents' commands take a minute")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{filepath.Join(root, "README.md")}
	more, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	sort.Strings(more)
	docs = append(docs, more...)
	for _, doc := range docs {
		rel, _ := filepath.Rel(root, doc)
		t.Run(strings.ReplaceAll(rel, "/", "_"), func(t *testing.T) {
			blocks, err := parseBlocks(doc)
			if err != nil {
				t.Fatal(err)
			}
			runs := 0
			for _, b := range blocks {
				if b.runs() {
					runs++
				}
			}
			if runs == 0 {
				t.Skip("no command to run")
			}
			runDocument(t, root, rel, blocks)
		})
	}
}

// block is a fenced code block of a document and how to run it.
type block struct {
	line      int    // where it starts
	lang      string // the fence's info string
	body      string
	directive string // the run: comment before it, if any
}

func (b block) runs() bool {
	switch {
	case strings.HasPrefix(b.directive, "skip"):
		return false
	case strings.HasPrefix(b.directive, "background") || strings.HasPrefix(b.directive, "stop"):
		return b.lang == "sh"
	case b.lang == "sh":
		return true
	case b.lang == "console":
		return b.directive == "check"
	}
	return false
}

var directiveRE = regexp.MustCompile(`^<!--\s*run:\s*(.*?)\s*-->$`)

// parseBlocks reads the fenced blocks of a Markdown file.
func parseBlocks(path string) ([]block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var blocks []block
	var cur *block
	directive := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.HasPrefix(line, "```"):
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.body += line + "\n"
		case strings.HasPrefix(line, "```"):
			cur = &block{line: n, lang: strings.TrimSpace(strings.TrimPrefix(line, "```")), directive: directive}
			directive = ""
		default:
			if m := directiveRE.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
				directive = m[1]
			} else if strings.TrimSpace(line) != "" {
				directive = "" // a directive binds the very next block
			}
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: a code block is not closed", path, cur.line)
	}
	return blocks, sc.Err()
}

// runDocument runs a document's blocks in order in a fresh copy of the
// repository, with a fresh data directory and free ports.
func runDocument(t *testing.T, root, doc string, blocks []block) {
	work := copyRepo(t, root)
	listen, http := testkit.FreeAddr(t), testkit.FreeAddr(t)
	env := append(os.Environ(),
		"FLMNGR_DATA="+filepath.Join(t.TempDir(), "data"),
		"FLMNGR_LISTEN="+listen, "FLMNGR_NATS=nats://"+listen, "FLMNGR_HTTP="+http,
		"FLMNGR_CREDS=", "FLMNGR_TLS_CA=")
	var bg []*bgProc
	stopAll := func() {
		for _, p := range bg {
			p.stop(t)
		}
		bg = nil
	}
	defer stopAll()
	for _, b := range blocks {
		if !b.runs() {
			continue
		}
		where := fmt.Sprintf("%s:%d", doc, b.line)
		d := b.directive
		if rest, ok := strings.CutPrefix(d, "stop"); ok {
			stopAll()
			d = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ","))
		}
		switch {
		case strings.HasPrefix(d, "background"):
			m := regexp.MustCompile(`until "([^"]*)"`).FindStringSubmatch(d)
			if m == nil {
				t.Fatalf("%s: a background block needs until \"text\"", where)
			}
			bg = append(bg, startBackground(t, where, work, env, b.body, m[1]))
		case b.lang == "console":
			runTranscript(t, where, work, env, b.body)
		default:
			out, err := shell(work, env, b.body, 5*time.Minute)
			if d == "fails" {
				if err == nil {
					t.Fatalf("%s: the block was to fail, and succeeded:\n%s\n%s", where, b.body, out)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v\n--- block:\n%s--- output:\n%s", where, err, b.body, out)
			}
		}
	}
}

// shell runs a script with bash, -e and pipefail, and returns its output.
func shell(dir string, env []string, script string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// runTranscript runs each "$ command" of a console block and compares what
// it prints with the lines that follow it.
func runTranscript(t *testing.T, where, dir string, env []string, body string) {
	t.Helper()
	var cmds []string
	var wants [][]string
	for _, line := range strings.Split(strings.TrimRight(body, "\n"), "\n") {
		if c, ok := strings.CutPrefix(line, "$ "); ok {
			cmds = append(cmds, c)
			wants = append(wants, nil)
		} else if len(cmds) > 0 {
			wants[len(wants)-1] = append(wants[len(wants)-1], line)
		}
	}
	for i, c := range cmds {
		out, _ := shell(dir, env, c, time.Minute) // a transcript shows failures too
		got := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(got) != len(wants[i]) {
			t.Fatalf("%s: $ %s\nprinted %d lines, the document shows %d:\n%s", where, c, len(got), len(wants[i]), out)
		}
		for j, w := range wants[i] {
			if !lineMatches(w, got[j]) {
				t.Fatalf("%s: $ %s\nline %d is\n  %s\nthe document shows\n  %s", where, c, j+1, got[j], w)
			}
		}
	}
}

// lineMatches compares a printed line with the document's, where "…"
// matches anything.
func lineMatches(want, got string) bool {
	want, got = strings.TrimRight(want, " "), strings.TrimRight(got, " ")
	parts := strings.Split(want, "…")
	re := "^"
	for i, p := range parts {
		if i > 0 {
			re += ".*"
		}
		re += regexp.QuoteMeta(p)
	}
	return regexp.MustCompile(re + "$").MatchString(got)
}

// bgProc is a block that keeps running.
type bgProc struct {
	where string
	cmd   *exec.Cmd
	out   *syncBuf
	done  chan struct{}
}

func startBackground(t *testing.T, where, dir string, env []string, script, ready string) *bgProc {
	t.Helper()
	p := &bgProc{where: where, out: &syncBuf{}, done: make(chan struct{})}
	p.cmd = exec.Command("bash", "-euo", "pipefail", "-c", script)
	p.cmd.Dir, p.cmd.Env = dir, env
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.After(3 * time.Minute)
	for !strings.Contains(p.out.String(), ready) {
		select {
		case <-p.done:
			t.Fatalf("%s: exited before it printed %q:\n%s", where, ready, p.out.String())
		case <-deadline:
			p.stop(t)
			t.Fatalf("%s: did not print %q in 3 minutes:\n%s", where, ready, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return p
}

// stop interrupts the block as Ctrl-C would, and kills it if it does not
// end in 30 s.
func (p *bgProc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		t.Errorf("%s: still running 30 s after Ctrl-C:\n%s", p.where, p.out.String())
	}
}

// copyRepo copies the repository's files (tracked, and new ones not
// ignored) into a temporary directory: the commands run there as in a
// fresh clone, and what they write stays there.
func copyRepo(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard").Output()
	if err != nil {
		t.Skipf("the documents run in a copy of the git checkout; git ls-files: %v", err)
	}
	dst := t.TempDir()
	for _, name := range bytes.Split(bytes.TrimRight(out, "\x00"), []byte{0}) {
		rel := string(name)
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or not a file
		}
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := copyFile(src, to, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
