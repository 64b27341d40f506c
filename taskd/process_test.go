package taskd_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/services/testkit"
	"github.com/flmngr/flmngr/taskd"
)

// start runs a shell script as a task and collects its messages.
func start(t *testing.T, script string, mod ...func(*taskd.Config)) (*taskd.Process, chan taskd.Message) {
	t.Helper()
	msgs := make(chan taskd.Message, 1000)
	cfg := taskd.Config{
		Argv:      []string{"/bin/sh", "-c", script},
		Dir:       t.TempDir(),
		OnMessage: func(m taskd.Message) { msgs <- m },
	}
	for _, f := range mod {
		f(&cfg)
	}
	p, err := taskd.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = p.Stop(ctx)
	})
	return p, msgs
}

func waitExit(t *testing.T, p *taskd.Process) taskd.Exit {
	t.Helper()
	select {
	case <-p.Done():
		return p.Exit()
	case <-time.After(20 * time.Second):
		t.Fatal("process did not exit")
	}
	return taskd.Exit{}
}

func next(t *testing.T, msgs chan taskd.Message, kind taskd.Kind) taskd.Message {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-msgs:
			if m.Kind == kind {
				return m
			}
		case <-timeout:
			t.Fatalf("no %s message", kind)
		}
	}
}

func drain(msgs chan taskd.Message) []taskd.Message {
	var out []taskd.Message
	for {
		select {
		case m := <-msgs:
			out = append(out, m)
		default:
			return out
		}
	}
}

func TestEveryMessageType(t *testing.T) {
	p, msgs := start(t, `
echo '{"type":"info","info":"Started"}'
echo '{"type":"print","message":"loading data"}'
echo 'plain log line'
echo 'stderr line' >&2
echo '{"type":"model","round":"3","acc":"0.91","loss":0.25}'
echo '{"type":"model","round":4,"acc":"[(10, {0.5})]"}'
echo '{"type":"trigger","trigger_name":"trigger_example","trigger_arguments":"0.42"}'
echo '{"type":"info","info":"Finished"}'
`)
	ex := waitExit(t, p)
	if ex.Outcome != taskd.OutcomeFinished || ex.Code != 0 {
		t.Fatalf("exit %+v", ex)
	}
	got := drain(msgs)
	var stdout, stderr []taskd.Message
	for _, m := range got {
		if m.Stream == "stderr" {
			stderr = append(stderr, m)
		} else {
			stdout = append(stdout, m)
		}
	}
	if len(stdout) != 7 || len(stderr) != 1 {
		t.Fatalf("got %d stdout and %d stderr messages: %v", len(stdout), len(stderr), got)
	}
	want := []struct {
		kind taskd.Kind
		text string
	}{{taskd.KindInfo, "Started"}, {taskd.KindPrint, "loading data"}, {taskd.KindLog, "plain log line"}, {taskd.KindModel, ""}, {taskd.KindModel, ""}, {taskd.KindTrigger, ""}, {taskd.KindInfo, "Finished"}}
	for i, w := range want {
		if stdout[i].Kind != w.kind || stdout[i].Text != w.text {
			t.Errorf("message %d: %s %q, want %s %q", i, stdout[i].Kind, stdout[i].Text, w.kind, w.text)
		}
	}
	if m := stdout[3]; m.Round != 3 || m.Metrics["accuracy"] != 0.91 || m.Metrics["acc"] != 0.91 || m.Metrics["loss"] != 0.25 {
		t.Errorf("model: %+v", m)
	}
	if m := stdout[4]; m.Round != 4 || m.Raw["acc"] != "[(10, {0.5})]" || m.Metrics != nil {
		t.Errorf("model with raw metrics: %+v", m)
	}
	if m := stdout[5]; m.Trigger != "trigger_example" || m.Arguments != "0.42" {
		t.Errorf("trigger: %+v", m)
	}
	if stderr[0].Kind != taskd.KindLog || stderr[0].Text != "stderr line" {
		t.Errorf("stderr: %+v", stderr[0])
	}
}

func TestErrorLine(t *testing.T) {
	p, msgs := start(t, `echo '{"type":"error","exception":"CUDA out of memory"}'; exit 1`)
	ex := waitExit(t, p)
	if ex.Outcome != taskd.OutcomeErrored || ex.Exception != "CUDA out of memory" || ex.Code != 1 {
		t.Fatalf("exit %+v", ex)
	}
	if m := next(t, msgs, taskd.KindError); m.Text != "CUDA out of memory" {
		t.Fatalf("error message %+v", m)
	}
	// The original's str(Exception()) is empty: still an error.
	p, _ = start(t, `echo '{"type":"error","exception":""}'`)
	if ex := waitExit(t, p); ex.Outcome != taskd.OutcomeErrored {
		t.Fatalf("empty exception: %+v", ex)
	}
}

func TestMalformedLinesAreLogLines(t *testing.T) {
	lines := []string{
		`{not json`,
		`{"type":"unknown","x":1}`,
		`{"type":"model"`,
		`{"type":"info"}`,
		`{"type":"trigger","trigger_arguments":"1"}`,
		`[1,2,3]`,
		`{"type":"info","info":"Finished","deep":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		"{\"type\":\"info\",\"info\":\"\xff\xfe\"}",
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "lines")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, msgs := start(t, "cat "+file)
	ex := waitExit(t, p)
	if ex.Outcome != taskd.OutcomeUnreported {
		t.Fatalf("a malformed line changed the outcome: %+v", ex)
	}
	got := drain(msgs)
	if len(got) != len(lines) {
		t.Fatalf("%d messages for %d lines", len(got), len(lines))
	}
	for i, m := range got {
		if m.Kind != taskd.KindLog {
			t.Errorf("line %d parsed as %s: %q", i, m.Kind, lines[i])
		}
	}
	if !strings.Contains(got[7].Text, "\uFFFD") {
		t.Errorf("invalid UTF-8 kept as is: %q", got[7].Text)
	}
}

func TestVeryLongLineIsCut(t *testing.T) {
	p, msgs := start(t, `head -c 300000 /dev/zero | tr '\0' 'a'; echo; echo '{"type":"info","info":"Finished"}'`, func(c *taskd.Config) { c.MaxLine = 4096 })
	ex := waitExit(t, p)
	if ex.Outcome != taskd.OutcomeFinished {
		t.Fatalf("exit %+v", ex)
	}
	got := drain(msgs)
	if len(got) != 2 || got[0].Kind != taskd.KindLog || len(got[0].Text) > 4200 || !strings.Contains(got[0].Text, "line cut") {
		t.Fatalf("long line: %d messages, first %s of %d bytes", len(got), got[0].Kind, len(got[0].Text))
	}
	if !got[1].IsFinished() {
		t.Fatalf("the line after a long one was lost: %+v", got[1])
	}
}

func TestControlMessagesArriveWhileTheProcessRuns(t *testing.T) {
	// The original read stdout and stderr in turn: this error would only
	// have been seen after the next stderr line. Here it arrives at once.
	p, msgs := start(t, `echo '{"type":"error","exception":"early"}'; sleep 60`)
	if m := next(t, msgs, taskd.KindError); m.Text != "early" {
		t.Fatalf("got %+v", m)
	}
	select {
	case <-p.Done():
		t.Fatal("process already ended")
	default:
	}
	ex, err := p.Stop(context.Background())
	if err != nil || ex.Outcome != taskd.OutcomeErrored {
		t.Fatalf("stop: %+v %v", ex, err)
	}
}

func TestStopEscalatesWhenSIGTERMIsIgnored(t *testing.T) {
	p, msgs := start(t, `trap '' TERM; echo ready; while :; do sleep 1; done`, func(c *taskd.Config) { c.Grace = 300 * time.Millisecond })
	next(t, msgs, taskd.KindLog)
	start := time.Now()
	ex, err := p.Stop(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ex.Outcome != taskd.OutcomeStopped || ex.Signal != "killed" {
		t.Fatalf("exit %+v", ex)
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 5*time.Second {
		t.Fatalf("stop took %s", took)
	}
}

func TestStopGraceful(t *testing.T) {
	p, msgs := start(t, `trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.1; done`)
	next(t, msgs, taskd.KindLog)
	ex, err := p.Stop(context.Background())
	if err != nil || ex.Outcome != taskd.OutcomeStopped || ex.Code != 0 {
		t.Fatalf("exit %+v %v", ex, err)
	}
}

// alive reports whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func readPID(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestGrandchildrenDieWithTheGroup(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "grandchild")
	p, msgs := start(t, `sleep 600 & echo $! > `+pidfile+`; echo ready; wait`)
	next(t, msgs, taskd.KindLog)
	gc := readPID(t, pidfile)
	if !alive(gc) {
		t.Fatal("grandchild not running")
	}
	if _, err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !testkit.Until(5*time.Second, func() bool { return !alive(gc) }) {
		t.Fatalf("grandchild %d outlived the stop", gc)
	}
}

func TestLeftoversHoldingThePipeDoNotHangTheExit(t *testing.T) {
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "leftover")
	// The child exits at once but leaves a process that keeps stdout open.
	p, _ := start(t, `(sleep 600 & echo $! > `+pidfile+`); echo '{"type":"info","info":"Finished"}'`)
	ex := waitExit(t, p)
	if ex.Outcome != taskd.OutcomeFinished {
		t.Fatalf("exit %+v", ex)
	}
	if ex.Duration > 10*time.Second {
		t.Fatalf("exit took %s", ex.Duration)
	}
	if gc := readPID(t, pidfile); !testkit.Until(5*time.Second, func() bool { return !alive(gc) }) {
		t.Fatalf("leftover %d outlived its task", gc)
	}
}

func TestCrashWithoutReportIsAFailure(t *testing.T) {
	p, _ := start(t, `echo '{"type":"info","info":"Started"}'; echo 'Traceback: boom' >&2; exit 3`)
	ex := waitExit(t, p)
	if ex.Outcome != taskd.OutcomeUnreported || ex.Code != 3 || len(ex.LastLogs) != 1 || ex.LastLogs[0] != "Traceback: boom" {
		t.Fatalf("exit %+v", ex)
	}
	p, _ = start(t, `kill -9 $$`)
	ex = waitExit(t, p)
	if ex.Outcome != taskd.OutcomeUnreported || ex.Signal != "killed" || ex.Code != -1 {
		t.Fatalf("killed: %+v", ex)
	}
	// Exit is reported once and stays the same.
	again, err := p.Stop(context.Background())
	if err != nil || again.Outcome != ex.Outcome || again.Duration != ex.Duration {
		t.Fatalf("stop after exit: %+v %v", again, err)
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := taskd.Start(taskd.Config{}); err == nil {
		t.Fatal("empty argv accepted")
	}
	if _, err := taskd.Start(taskd.Config{Argv: []string{"/nonexistent/program"}}); err == nil {
		t.Fatal("missing program accepted")
	}
}

// A cut line is shown as the text it began with, even when that text
// would parse as a report: a line too long to read is never one.
func TestCutLineIsNeverAReport(t *testing.T) {
	p, msgs := start(t, `printf '{"type":"error","exception":"not a report"}'; head -c 300000 /dev/zero | tr '\0' ' '; echo; echo '{"type":"info","info":"Finished"}'`,
		func(c *taskd.Config) { c.MaxLine = 4096 })
	if ex := waitExit(t, p); ex.Outcome != taskd.OutcomeFinished {
		t.Fatalf("exit %+v: the cut line counted as an error report", ex)
	}
	got := drain(msgs)
	if len(got) != 2 || got[0].Kind != taskd.KindLog || !strings.HasPrefix(got[0].Text, `{"type":"error","exception":"not a report"}`) {
		t.Fatalf("cut line: %+v", got)
	}
}
