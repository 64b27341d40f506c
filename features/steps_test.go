package features

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cucumber/godog"
	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/cloud"
	"github.com/flmngr/flmngr/services/testkit"
)

// binary is the flmngr binary built once for the whole suite.
var binary string

func TestMain(m *testing.M) {
	var err error
	if binary, err = testkit.BuildBinary(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(filepath.Dir(binary))
	os.Exit(code)
}

func TestFeatures(t *testing.T) {
	root := t.TempDir()
	suite := godog.TestSuite{
		Name: "flmngr",
		ScenarioInitializer: func(sc *godog.ScenarioContext) {
			initScenario(sc, root)
		},
		Options: &godog.Options{
			Format:   format(),
			Paths:    featurePaths(),
			TestingT: t,
			Strict:   true,
		},
	}
	if suite.Run() != 0 {
		t.Fatal("feature scenarios failed")
	}
}

// featurePaths are the features to run: $FLMNGR_FEATURES (paths, with
// :line to pick a scenario, separated by commas) or all of them.
func featurePaths() []string {
	if p := os.Getenv("FLMNGR_FEATURES"); p != "" {
		return strings.Split(p, ",")
	}
	return []string{"."}
}

// world is one scenario's state, carried in its context.
type world struct {
	dir     string
	cloud   *cloud.Cloud // an in-process cloud, or
	proc    *process     // a `flmngr up` process
	url     string       // where either listens
	nc      *nats.Conn   // the scenario's own connection
	api     *api.Client
	lastSeq uint64 // stream sequence before the last command
	stdout  string
	stderr  string
	code    int
	dump    map[string][]byte
	agents  map[string]*process
	pids    map[string]int // processes seen running, by name
}

type worldKey struct{}

func w(ctx context.Context) *world { return ctx.Value(worldKey{}).(*world) }

func initScenario(sc *godog.ScenarioContext, root string) {
	sc.Before(func(ctx context.Context, s *godog.Scenario) (context.Context, error) {
		dir, err := os.MkdirTemp(root, "scenario-")
		if err != nil {
			return ctx, err
		}
		return context.WithValue(ctx, worldKey{}, &world{dir: dir, agents: map[string]*process{}, pids: map[string]int{}}), nil
	})
	sc.After(func(ctx context.Context, s *godog.Scenario, err error) (context.Context, error) {
		wd := w(ctx)
		for _, a := range wd.agents {
			a.terminate()
		}
		wd.closeCloud()
		if err != nil {
			wd.dumpLogs(godog.T(ctx))
		}
		return ctx, nil
	})
	initSupervisorSteps(sc)
	sc.Step(`^a running flmngr$`, startFlmngr)
	sc.Step(`^flmngr is restarted$`, restartFlmngr)
	sc.Step(`^the operator runs (flmngr .+)$`, runCLI)
	sc.Step(`^the operator ran (flmngr .+)$`, ranCLI)
	sc.Step(`^the command succeeds$`, commandSucceeds)
	sc.Step(`^the command fails with "([^"]*)"$`, commandFails)
	sc.Step(`^the output contains "([^"]*)"$`, outputContains)
	sc.Step(`^the output does not contain "([^"]*)"$`, outputLacks)
	sc.Step(`^the output shows "([^"]*)" as (?:"([^"]*)"|'([^']*)')$`, outputShows)
	sc.Step(`^the output lists "([^"]*)" before "([^"]*)"$`, outputOrder)
	sc.Step(`^the listed tasks are "([^"]*)"$`, listedTasks)
	sc.Step(`^(\d+) events? (?:was|were) appended$`, eventsAppended)
	sc.Step(`^no event was appended$`, func(ctx context.Context) error { return eventsAppended(ctx, 0) })
	sc.Step(`^task "([^"]*)" has port (\d+)$`, taskHasPort)
	sc.Step(`^task "([^"]*)" has status "([^"]*)"$`, taskHasStatus)
	sc.Step(`^task "([^"]*)" is (not )?running$`, taskRunning)
	sc.Step(`^task "([^"]*)" runs with server arguments "([^"]*)"$`, taskArguments)
	sc.Step(`^there is no task "([^"]*)"$`, noTask)
	sc.Step(`^no event or view contains "([^"]*)" in clear$`, nothingContains)
	sc.Step(`^the views are caught up$`, viewsCaughtUp)
	sc.Step(`^the rebuilt views equal the incremental ones byte for byte$`, rebuiltEqual)
}

func open(ctx context.Context) error {
	wd := w(ctx)
	c, err := cloud.Open(ctx, cloud.Config{DataDir: wd.dataDir(), Listen: "127.0.0.1:0", Name: "features",
		Grace: 2 * time.Second, HeartbeatTimeout: time.Second, Auth: true})
	if err != nil {
		return err
	}
	wd.cloud = c
	return wd.connect(c.ClientURL())
}

func (wd *world) dataDir() string { return filepath.Join(wd.dir, "data") }

// connect makes the scenario's own connection to the cloud at url.
func (wd *world) connect(url string) error {
	opts, err := wd.operator()
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))...)
	if err != nil {
		return err
	}
	wd.url, wd.nc = url, nc
	wd.api = api.NewClient(nc, 10*time.Second)
	return nil
}

// operatorKey is the operators' key file of the deployment.
func (wd *world) operatorKey() string { return filepath.Join(wd.dataDir(), "operator.creds") }

// operator are the connection options of an operator: the key flmngr
// made in its data directory.
func (wd *world) operator() ([]nats.Option, error) {
	return auth.OperatorOptions(wd.operatorKey())
}

// admin connects with full rights, made from the deployment's trust
// material, as someone who took the cloud's data directory would.
func (wd *world) admin() (*nats.Conn, error) {
	t, _, err := auth.LoadOrCreateTrust(auth.KeysFile(wd.dataDir()))
	if err != nil {
		return nil, err
	}
	creds, err := t.NewUser(auth.RoleAdmin, "test-admin")
	if err != nil {
		return nil, err
	}
	return nats.Connect(wd.url, creds.Option())
}

func (wd *world) closeCloud() {
	if wd.nc != nil {
		wd.nc.Close()
		wd.nc = nil
	}
	if wd.cloud != nil {
		wd.cloud.Close()
		wd.cloud = nil
	}
	if wd.proc != nil {
		wd.proc.terminate()
		wd.proc = nil
	}
}

func startFlmngr(ctx context.Context) error { return open(ctx) }

func restartFlmngr(ctx context.Context) error {
	w(ctx).closeCloud()
	return open(ctx)
}

// streamSeq is how far the log goes.
func (wd *world) streamSeq(ctx context.Context) (uint64, error) {
	s, err := wd.api.Status(ctx)
	return s.StreamSeq, err
}

func runCLI(ctx context.Context, line string) error {
	wd := w(ctx)
	args, err := splitArgs(strings.TrimPrefix(line, "flmngr "))
	if err != nil {
		return err
	}
	if wd.lastSeq, err = wd.streamSeq(ctx); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, binary, args...)
	cmd.Env = append(os.Environ(), "FLMNGR_NATS="+wd.url, "FLMNGR_CREDS="+wd.operatorKey())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	wd.stdout, wd.stderr, wd.code = out.String(), errOut.String(), 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		wd.code = exit.ExitCode()
	case err != nil:
		return err
	}
	return nil
}

func ranCLI(ctx context.Context, line string) error {
	if err := runCLI(ctx, line); err != nil {
		return err
	}
	return commandSucceeds(ctx)
}

func commandSucceeds(ctx context.Context) error {
	wd := w(ctx)
	if wd.code != 0 {
		return fmt.Errorf("exit status %d: %s", wd.code, wd.stderr)
	}
	return nil
}

func commandFails(ctx context.Context, text string) error {
	wd := w(ctx)
	if wd.code == 0 {
		return fmt.Errorf("the command succeeded: %s", wd.stdout)
	}
	if strings.Count(strings.TrimSpace(wd.stderr), "\n") != 0 {
		return fmt.Errorf("the error is not one line: %q", wd.stderr)
	}
	if !strings.Contains(wd.stderr, text) {
		return fmt.Errorf("error %q does not contain %q", wd.stderr, text)
	}
	return nil
}

func outputContains(ctx context.Context, text string) error {
	if !strings.Contains(w(ctx).stdout, text) {
		return fmt.Errorf("output does not contain %q:\n%s", text, w(ctx).stdout)
	}
	return nil
}

func outputLacks(ctx context.Context, text string) error {
	if strings.Contains(w(ctx).stdout+w(ctx).stderr, text) {
		return fmt.Errorf("output contains %q:\n%s", text, w(ctx).stdout)
	}
	return nil
}

// outputShows reads a "key  value" row of a key-value table.
func outputShows(ctx context.Context, key, dq, sq string) error {
	want := dq + sq
	for _, line := range strings.Split(w(ctx).stdout, "\n") {
		k, v, ok := strings.Cut(line, "  ")
		if ok && k == key {
			if got := strings.TrimSpace(v); got != want {
				return fmt.Errorf("%s is %q, want %q", key, got, want)
			}
			return nil
		}
	}
	return fmt.Errorf("no row %q in:\n%s", key, w(ctx).stdout)
}

func outputOrder(ctx context.Context, a, b string) error {
	out := w(ctx).stdout
	i, j := strings.Index(out, a), strings.Index(out, b)
	if i < 0 || j < 0 || i > j {
		return fmt.Errorf("%q does not come before %q in:\n%s", a, b, out)
	}
	return nil
}

func listedTasks(ctx context.Context, want string) error {
	lines := strings.Split(strings.TrimSpace(w(ctx).stdout), "\n")
	var ids []string
	for _, l := range lines[1:] {
		ids = append(ids, strings.Fields(l)[0])
	}
	if got := strings.Join(ids, ", "); got != want {
		return fmt.Errorf("listed %q, want %q", got, want)
	}
	return nil
}

func eventsAppended(ctx context.Context, n int) error {
	wd := w(ctx)
	last, err := wd.streamSeq(ctx)
	if err != nil {
		return err
	}
	if got := int(last - wd.lastSeq); got != n {
		return fmt.Errorf("%d events appended, want %d", got, n)
	}
	return nil
}

func task(ctx context.Context, id string) (api.Task, error) {
	return w(ctx).api.Task(ctx, id)
}

func taskHasPort(ctx context.Context, id string, port int) error {
	t, err := task(ctx, id)
	if err != nil {
		return err
	}
	if t.Spec.Port != port {
		return fmt.Errorf("task %s has port %d, want %d", id, t.Spec.Port, port)
	}
	return nil
}

func taskHasStatus(ctx context.Context, id, status string) error {
	t, err := task(ctx, id)
	if err != nil {
		return err
	}
	if string(t.Status) != status {
		return fmt.Errorf("task %s is %s, want %s", id, t.Status, status)
	}
	return nil
}

func taskRunning(ctx context.Context, id, not string) error {
	t, err := task(ctx, id)
	if err != nil {
		return err
	}
	if t.Running != (not == "") {
		return fmt.Errorf("task %s: running = %v (%s)", id, t.Running, t.Status)
	}
	return nil
}

func taskArguments(ctx context.Context, id, args string) error {
	t, err := task(ctx, id)
	if err != nil {
		return err
	}
	if t.Arguments == nil || *t.Arguments != args {
		return fmt.Errorf("task %s runs with arguments %v, want %q", id, t.Arguments, args)
	}
	return nil
}

func noTask(ctx context.Context, id string) error {
	_, err := task(ctx, id)
	if fault.KindOf(err) != fault.KindNotFound {
		return fmt.Errorf("task %s: got %v, want not found", id, err)
	}
	return nil
}

// nothingContains greps every stored event and every view for text.
func nothingContains(ctx context.Context, text string) error {
	wd := w(ctx)
	if err := viewsCaughtUp(ctx); err != nil {
		return err
	}
	for k, v := range wd.dump {
		if bytes.Contains(v, []byte(text)) {
			return fmt.Errorf("view %s contains %q", k, text)
		}
	}
	last, err := wd.cloud.Log.LastSeq(ctx)
	if err != nil {
		return err
	}
	for seq := uint64(1); seq <= last; seq++ {
		e, err := wd.cloud.Log.Get(ctx, seq)
		if err != nil {
			return err
		}
		if bytes.Contains(e.Payload, []byte(text)) {
			return fmt.Errorf("event %d (%s) contains %q", seq, e.Type, text)
		}
	}
	return nil
}

func viewsCaughtUp(ctx context.Context) error {
	wd := w(ctx)
	last, err := wd.cloud.Log.LastSeq(ctx)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := wd.cloud.Views.WaitFor(wctx, last); err != nil {
		return err
	}
	wd.dump = map[string][]byte{}
	return wd.cloud.Views.Dump(func(k, v []byte) error { wd.dump[string(k)] = v; return nil })
}

func rebuiltEqual(ctx context.Context) error {
	wd := w(ctx)
	before := wd.dump
	if err := viewsCaughtUp(ctx); err != nil {
		return err
	}
	after := wd.dump
	if len(before) != len(after) {
		return fmt.Errorf("%d keys before the rebuild, %d after", len(before), len(after))
	}
	for k, v := range before {
		if !bytes.Equal(after[k], v) {
			return fmt.Errorf("key %q differs after the rebuild:\n%s\n%s", k, v, after[k])
		}
	}
	return nil
}

// splitArgs splits a command line like a POSIX shell would for the subset
// scenarios use: blanks separate words, '...' is literal, "..." allows \"
// and \\ escapes, and ” is an empty word.
func splitArgs(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", line)
			}
			cur.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					i++
				}
				cur.WriteByte(line[i])
			}
			if i >= len(line) {
				return nil, fmt.Errorf("unterminated \" in %q", line)
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// format prints every step with -v and only failures otherwise.
func format() string {
	if testing.Verbose() {
		return "pretty"
	}
	return "progress"
}
