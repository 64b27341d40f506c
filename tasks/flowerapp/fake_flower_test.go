package flowerapp_test

// A fake Flower for the tests: CI has no Flower, so the test binary also
// plays flower-superlink, flower-supernode and flwr (and flmngr, for the
// drivers the server supervisor and the agents start as "{flmngr} flower
// ..."). It follows what Flower 1.23.0 was observed to do, for the
// commands flmngr uses:
//
//   - `flwr run APP FED --format json` answers {"success": true, "run-id":
//     N, "fab-hash": …} at once, N an unsigned 64-bit integer above 2^63;
//     its exit code is 0 whatever happens.
//   - `flwr ls APP FED --run-id N --format json` lists the run with status
//     pending → running → finished:completed|failed|stopped; an unknown
//     run or an unreachable SuperLink is {"success": false,
//     "error-message": …} with exit code 0.
//   - `flwr stop N APP FED --format json` stops a running run
//     (finished:stopped); on a finished run it answers success false, exit
//     code 0.
//   - `flwr log N APP FED --show` prints "Loading project configuration..."
//     then the ServerApp's log; an unknown run exits 1.
//   - The SuperLink prints the ServerApp's log ([ROUND i/N], aggregate_*,
//     Aggregated MetricRecord) on its stdout, and runs a run only once
//     enough SuperNodes are connected.
//   - A SuperNode retries until its SuperLink is up, exits 0 when its
//     SuperLink goes away, and one the SuperLink refuses exits 1 at once.
//   - SIGTERM ends both gracefully with exit code 0.
//
// The fake keeps its state in $FAKE_FLOWER_DIR: runs/N.json (the run),
// N.status, N.stop, N.log, and calls.log (every command line).

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flmngr/flmngr/tasks/flowerapp"
)

func TestMain(m *testing.M) {
	name := filepath.Base(os.Args[0])
	switch {
	case name == "flower-superlink":
		os.Exit(fakeSuperLink(os.Args[1:]))
	case name == "flower-supernode":
		os.Exit(fakeSuperNode(os.Args[1:]))
	case name == "flwr":
		os.Exit(fakeFlwr(os.Args[1:]))
	case len(os.Args) > 1 && os.Args[1] == "flower":
		// The test binary as flmngr: {flmngr} is os.Executable().
		os.Exit(asFlmngr(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func asFlmngr(args []string) int {
	ctx, stop := signal.NotifyContext(contextBackground(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := flowerapp.Command(ctx, args, os.Stdout, os.Stderr); err != nil {
		return 1
	}
	return 0
}

func fakeDir() string {
	d := os.Getenv("FAKE_FLOWER_DIR")
	if d == "" {
		fmt.Fprintln(os.Stderr, "FAKE_FLOWER_DIR is not set")
		os.Exit(3)
	}
	return d
}

var callMu sync.Mutex

func logCall(name string, args []string) {
	callMu.Lock()
	defer callMu.Unlock()
	f, err := os.OpenFile(filepath.Join(fakeDir(), "calls.log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintf(f, "%d %s %s\n", os.Getpid(), name, strings.Join(args, " "))
		f.Close()
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// fakeRun is runs/N.json, written by flwr run.
type fakeRun struct {
	ID      string `json:"id"`
	Rounds  int    `json:"rounds"`
	FabHash string `json:"fab_hash"`
	Created string `json:"created"`
}

func runsDir() string { return filepath.Join(fakeDir(), "runs") }

func writeAtomic(path, text string) {
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	_ = os.WriteFile(tmp, []byte(text), 0o644)
	_ = os.Rename(tmp, path)
}

func readText(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func now() string { return time.Now().UTC().Format("2006-01-02 15:04:05Z") }

// fakeSuperLink serves the Fleet API (SuperNodes connect and stay) and
// the Control API (accepts connections) and runs the submitted runs.
func fakeSuperLink(args []string) int {
	logCall("flower-superlink", args)
	fs := flag.NewFlagSet("flower-superlink", flag.ContinueOnError)
	fs.Bool("insecure", false, "")
	db := fs.String("database", ":flwr-in-memory-state:", "")
	fs.String("storage-dir", "", "")
	fleet := fs.String("fleet-api-address", "0.0.0.0:9092", "")
	fs.String("serverappio-api-address", "0.0.0.0:9091", "")
	control := fs.String("control-api-address", "0.0.0.0:9093", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Println("INFO :      Starting Flower SuperLink")
	_ = os.MkdirAll(runsDir(), 0o755)
	if *db != ":flwr-in-memory-state:" {
		_ = os.WriteFile(*db, []byte("fake state"), 0o600)
	}
	fl, err := net.Listen("tcp", *fleet)
	if err != nil {
		fmt.Println("ERROR :     Port in server address", *fleet, "is already in use.")
		return 1
	}
	cl, err := net.Listen("tcp", *control)
	if err != nil {
		fmt.Println("ERROR :     Port in server address", *control, "is already in use.")
		return 1
	}
	fmt.Println("INFO :      Flower Deployment Runtime: Starting Control API on", *control)
	fmt.Println("INFO :      Flower Deployment Runtime: Starting Fleet API (gRPC-rere) on", *fleet)
	var mu sync.Mutex
	nodes := map[net.Conn]bool{}
	go func() {
		for {
			c, err := cl.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	go func() {
		for {
			c, err := fl.Accept()
			if err != nil {
				return
			}
			go func() {
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					c.Close()
					return
				}
				fmt.Println("INFO :      [Fleet.ActivateNode] Activated", strings.TrimSpace(line))
				mu.Lock()
				nodes[c] = true
				mu.Unlock()
				_, _ = bufio.NewReader(c).ReadString('\n') // until it goes
				mu.Lock()
				delete(nodes, c)
				mu.Unlock()
				c.Close()
			}()
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	tick := time.NewTicker(50 * time.Millisecond)
	minNodes := envInt("FAKE_FLOWER_MIN_NODES", 2)
	roundFor := time.Duration(envInt("FAKE_FLOWER_ROUND_MS", 150)) * time.Millisecond
	type progress struct {
		round   int
		next    time.Time
		started time.Time
	}
	active := map[string]*progress{}
	for {
		select {
		case <-sig:
			mu.Lock()
			for c := range nodes {
				c.Close()
			}
			mu.Unlock()
			fmt.Println("INFO :      SuperLink terminated gracefully.")
			return 0
		case <-tick.C:
		}
		mu.Lock()
		connected := len(nodes)
		mu.Unlock()
		entries, _ := os.ReadDir(runsDir())
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".json") {
				continue
			}
			var r fakeRun
			if json.Unmarshal([]byte(readText(filepath.Join(runsDir(), e.Name()))), &r) != nil {
				continue
			}
			base := filepath.Join(runsDir(), r.ID)
			status := strings.TrimSpace(readText(base + ".status"))
			if strings.HasPrefix(status, "finished:") {
				continue
			}
			say := func(s string) {
				line := "INFO :      " + s
				fmt.Println(line)
				f, _ := os.OpenFile(base+".log", os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				fmt.Fprintln(f, line)
				f.Close()
			}
			finish := func(st string) {
				writeAtomic(base+".status", st+"\n"+now())
				delete(active, r.ID)
			}
			if _, err := os.Stat(base + ".stop"); err == nil {
				say("Run ID " + r.ID + " stopped.")
				finish(flowerapp.StatusStopped)
				continue
			}
			p := active[r.ID]
			if p == nil {
				if connected < minNodes {
					continue
				}
				p = &progress{next: time.Now(), started: time.Now()}
				active[r.ID] = p
				writeAtomic(base+".status", "running\n"+now())
				say("Starting FedAvg strategy:")
			}
			if time.Now().Before(p.next) {
				continue
			}
			if p.round == r.Rounds {
				say(fmt.Sprintf("Strategy execution finished in %.2fs", time.Since(p.started).Seconds()))
				finish(flowerapp.StatusCompleted)
				continue
			}
			p.round++
			p.next = time.Now().Add(roundFor)
			say(fmt.Sprintf("[ROUND %d/%d]", p.round, r.Rounds))
			say(fmt.Sprintf("configure_train: Sampled %d nodes (out of %d)", connected, connected))
			say(fmt.Sprintf("aggregate_train: Received %d results and 0 failures", connected))
			say(fmt.Sprintf("\t└──> Aggregated MetricRecord: {'loss': %g}", 1/float64(p.round+1)))
			if os.Getenv("FAKE_FLOWER_FAIL") != "" {
				say("ERROR :     ServerApp raised an exception: ValueError('broken app')")
				finish(flowerapp.StatusFailed)
				continue
			}
			say(fmt.Sprintf("aggregate_evaluate: Received %d results and 0 failures", connected))
			say(fmt.Sprintf("\t└──> Aggregated MetricRecord: {'mse': %g, 'per-node': [0.1, 0.2]}", 2/float64(p.round+1)))
		}
	}
}

// fakeSuperNode connects to its SuperLink's Fleet API and stays.
func fakeSuperNode(args []string) int {
	logCall("flower-supernode", args)
	fs := flag.NewFlagSet("flower-supernode", flag.ContinueOnError)
	fs.Bool("insecure", false, "")
	superlink := fs.String("superlink", "0.0.0.0:9092", "")
	appio := fs.String("clientappio-api-address", "0.0.0.0:9094", "")
	nodeConfig := fs.String("node-config", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Println("INFO :      Starting Flower SuperNode")
	l, err := net.Listen("tcp", *appio)
	if err != nil {
		fmt.Println("ERROR :     Port", *appio, "is already in use")
		return 1
	}
	defer l.Close()
	id := regexp.MustCompile(`flmngr-client-id="([^"]*)"`).FindStringSubmatch(*nodeConfig)
	if id != nil && slicesContains(strings.Split(os.Getenv("FAKE_FLOWER_REFUSE"), ","), id[1]) {
		time.Sleep(100 * time.Millisecond)
		fmt.Println(`ERROR :     <_InactiveRpcError of RPC that terminated with: status = StatusCode.FAILED_PRECONDITION details = "No SuperNode found with the given public key.">`)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	for {
		c, err := net.DialTimeout("tcp", *superlink, time.Second)
		if err != nil {
			fmt.Println("WARNING :   Connection attempt failed, retrying in 0.2 seconds")
			select {
			case <-sig:
				fmt.Println("INFO :      SuperNode terminated gracefully.")
				return 0
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		fmt.Fprintf(c, "node %s\n", *nodeConfig)
		gone := make(chan struct{})
		go func() { _, _ = bufio.NewReader(c).ReadString('\n'); close(gone) }()
		select {
		case <-sig:
			c.Close()
			fmt.Println("INFO :      SuperNode terminated gracefully.")
			return 0
		case <-gone:
			fmt.Println(`ERROR :     Exception calling application: Node ID not found`)
			return 0
		}
	}
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x != "" && x == s {
			return true
		}
	}
	return false
}

func answer(v map[string]any) int {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Println(string(b))
	return 0 // flwr exits 0, success or not
}

// federationAddress reads the federation's address in the app's
// pyproject.toml, as flwr does.
func federationAddress(app, fed string) (string, bool) {
	text := readText(filepath.Join(app, "pyproject.toml"))
	_, after, ok := strings.Cut(text, "[tool.flwr.federations."+fed+"]")
	if !ok {
		return "", false
	}
	m := regexp.MustCompile(`address = "([^"]+)"`).FindStringSubmatch(after)
	if m == nil {
		return "", false
	}
	return m[1], true
}

func fakeFlwr(args []string) int {
	logCall("flwr", args)
	if len(args) < 1 {
		return 2
	}
	fs := flag.NewFlagSet("flwr", flag.ContinueOnError)
	format := fs.String("format", "default", "")
	runID := fs.String("run-id", "", "")
	show := fs.Bool("show", false, "")
	var runConfig []string
	fs.Func("run-config", "", func(s string) error { runConfig = append(runConfig, s); return nil })
	// flwr mixes positional arguments and options: options last here.
	var pos []string
	rest := args[1:]
	for len(rest) > 0 && !strings.HasPrefix(rest[0], "--") {
		pos, rest = append(pos, rest[0]), rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return 2
	}
	_ = show
	unavailable := "Connection to the SuperLink is unavailable. Please check your network connection and 'address' in the federation configuration."
	reach := func(app, fed string) bool {
		addr, ok := federationAddress(app, fed)
		if !ok {
			return false
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	switch args[0] {
	case "run":
		if len(pos) != 2 || *format != "json" {
			return 2
		}
		if !reach(pos[0], pos[1]) {
			return answer(map[string]any{"success": false, "error-message": unavailable})
		}
		rounds := 3
		if m := regexp.MustCompile(`num-server-rounds = (\d+)`).FindStringSubmatch(readText(filepath.Join(pos[0], "pyproject.toml"))); m != nil {
			rounds, _ = strconv.Atoi(m[1])
		}
		for _, rc := range runConfig {
			if v, ok := strings.CutPrefix(rc, "num-server-rounds="); ok {
				rounds, _ = strconv.Atoi(v)
			}
		}
		var b [8]byte
		_, _ = rand.Read(b[:])
		id := new(big.Int).SetUint64(binary.BigEndian.Uint64(b[:]) | 1<<63).String()
		_ = os.MkdirAll(runsDir(), 0o755)
		r, _ := json.Marshal(fakeRun{ID: id, Rounds: rounds, FabHash: "423b43b2", Created: now()})
		writeAtomic(filepath.Join(runsDir(), id+".status"), "pending\n"+now())
		writeAtomic(filepath.Join(runsDir(), id+".json"), string(r))
		fmt.Printf("{\n  \"success\": true,\n  \"run-id\": %s,\n  \"fab-id\": \"flmngr/app\",\n  \"fab-name\": \"app\",\n  \"fab-version\": \"1.0.0\",\n  \"fab-hash\": \"423b43b2\",\n  \"fab-filename\": \"flmngr.app.1-0-0.423b43b2.fab\"\n}\n", id)
		return 0
	case "ls", "list":
		if len(pos) != 2 || *format != "json" {
			return 2
		}
		if !reach(pos[0], pos[1]) {
			return answer(map[string]any{"success": false, "error-message": unavailable})
		}
		var r fakeRun
		if json.Unmarshal([]byte(readText(filepath.Join(runsDir(), *runID+".json"))), &r) != nil {
			return answer(map[string]any{"success": false, "error-message": "Loading project configuration... \nSuccess\n Run ID not found.\n\n"})
		}
		st := strings.SplitN(readText(filepath.Join(runsDir(), r.ID+".status")), "\n", 2)
		finished := "N/A"
		if strings.HasPrefix(st[0], "finished:") && len(st) == 2 {
			finished = st[1]
		}
		fmt.Printf("{\n  \"success\": true,\n  \"runs\": [\n    {\n      \"run-id\": %s,\n      \"fab-id\": \"flmngr/app\",\n      \"fab-name\": \"app\",\n      \"fab-version\": \"1.0.0\",\n      \"fab-hash\": %q,\n      \"status\": %q,\n      \"elapsed\": \"00:00:01\",\n      \"created-at\": %q,\n      \"running-at\": \"N/A\",\n      \"finished-at\": %q\n    }\n  ]\n}\n",
			r.ID, r.FabHash, st[0], r.Created, finished)
		return 0
	case "stop":
		if len(pos) != 3 || *format != "json" {
			return 2
		}
		id := pos[0]
		st := readText(filepath.Join(runsDir(), id+".status"))
		switch {
		case !reach(pos[1], pos[2]):
			return answer(map[string]any{"success": false, "error-message": unavailable})
		case st == "":
			return answer(map[string]any{"success": false, "error-message": "Run ID not found."})
		case strings.HasPrefix(st, "finished:"):
			return answer(map[string]any{"success": false, "error-message": "Loading project configuration... \nSuccess\n Stopping run ID " + id + "...\n\n<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode.FAILED_PRECONDITION\n\tdetails = \"Run ID " + id + " is already finished\"\n>"})
		}
		// flwr is a Python program: seconds to start, more on a busy machine.
		time.Sleep(time.Duration(envInt("FAKE_FLOWER_STOP_MS", 0)) * time.Millisecond)
		writeAtomic(filepath.Join(runsDir(), id+".stop"), now())
		fmt.Printf("{\n  \"success\": true,\n  \"run-id\": %s\n}\n", id)
		return 0
	case "log":
		if len(pos) != 3 {
			return 2
		}
		fmt.Println("Loading project configuration... \nSuccess")
		if _, err := os.Stat(filepath.Join(runsDir(), pos[0]+".json")); err != nil {
			fmt.Println("❌ Run ID not found.")
			return 1
		}
		fmt.Print(readText(filepath.Join(runsDir(), pos[0]+".log")))
		return 0
	}
	return 2
}
