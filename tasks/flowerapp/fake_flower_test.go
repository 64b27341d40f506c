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
//   - TLS: a SuperLink given --ssl-ca-certfile/--ssl-certfile/--ssl-keyfile
//     serves its Fleet and Control APIs over TLS only: a plain connection
//     gets nowhere (a plain SuperNode retries "Connection attempt failed",
//     a plain flwr answers "Connection to the SuperLink is unavailable").
//     flwr trusts the federation's root-certificates, a SuperNode its
//     --root-certificates. --enable-supernode-auth with --insecure
//     refuses to start (exit code 1).
//   - SuperNode authentication (--enable-supernode-auth): a SuperNode
//     proves the key of --auth-supernode-private-key (OpenSSH format, an
//     ECDSA key); one whose public key is not registered is refused at
//     once ("No SuperNode found with the given public key.", exit code
//     1). `flwr supernode register KEY.pub APP FED --format json`
//     answers {"success": true, "node-id": N}; a key registered before,
//     even unregistered since, is "already in use" (success false, exit
//     code 0); a key file that is not an OpenSSH EC public key exits 1.
//     `flwr supernode unregister N APP FED --format json` takes a node
//     id: the node's connected SuperNode is dropped ("Node ID … not
//     found", it exits 0) and refused from then on; an unknown id is
//     "Node ID not found for this account." (success false, exit code
//     0). `flwr supernode ls APP FED --format json` lists the nodes with
//     their status: registered, online, offline or unregistered. A node
//     whose SuperNode died without a word (SIGKILL) stays online until
//     its heartbeats time out ($FAKE_FLOWER_PATIENCE_MS, 0 by default);
//     a SuperNode with its key is refused meanwhile ("SuperNode with node
//     ID N could not be activated.", exit code 1).
//
// The fake keeps its state in $FAKE_FLOWER_DIR: runs/N.json (the run),
// N.status, N.stop, N.log, and calls.log (every command line); the
// SuperLink keeps its registered nodes next to its --database.

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
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

	"golang.org/x/crypto/ssh"

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
// the Control API (node registration) and runs the submitted runs.
func fakeSuperLink(args []string) int {
	logCall("flower-superlink", args)
	fs := flag.NewFlagSet("flower-superlink", flag.ContinueOnError)
	insecure := fs.Bool("insecure", false, "")
	caFile := fs.String("ssl-ca-certfile", "", "")
	certFile := fs.String("ssl-certfile", "", "")
	keyFile := fs.String("ssl-keyfile", "", "")
	auth := fs.Bool("enable-supernode-auth", false, "")
	db := fs.String("database", ":flwr-in-memory-state:", "")
	fs.String("storage-dir", "", "")
	fleet := fs.String("fleet-api-address", "0.0.0.0:9092", "")
	fs.String("serverappio-api-address", "0.0.0.0:9091", "")
	control := fs.String("control-api-address", "0.0.0.0:9093", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Println("INFO :      Starting Flower SuperLink")
	tlsCfg, err := serverTLS(*caFile, *certFile, *keyFile)
	switch {
	case err != nil:
		fmt.Println("ERROR :     Exit Code: 600 Failed to read the TLS files:", err)
		return 1
	case *auth && (*insecure || tlsCfg == nil):
		fmt.Println("ERROR :     Exit Code: 104 The --enable-supernode-auth flag requires encrypted TLS communications. Please provide TLS certificates using the --ssl-certfile, --ssl-keyfile, and --ssl-ca-certfile arguments to your SuperLink.")
		return 1
	case !*insecure && tlsCfg == nil:
		fmt.Println("ERROR :     Exit Code: 600 No TLS certificates: use --insecure or give --ssl-ca-certfile, --ssl-certfile and --ssl-keyfile")
		return 1
	}
	_ = os.MkdirAll(runsDir(), 0o755)
	if *db != ":flwr-in-memory-state:" {
		_ = os.WriteFile(*db, []byte("fake state"), 0o600)
	}
	reg := openRegistry(*db)
	listen := func(addr string) (net.Listener, error) {
		l, err := net.Listen("tcp", addr)
		if err != nil || tlsCfg == nil {
			return l, err
		}
		return tls.NewListener(l, tlsCfg), nil
	}
	fl, err := listen(*fleet)
	if err != nil {
		fmt.Println("ERROR :     Port in server address", *fleet, "is already in use.")
		return 1
	}
	cl, err := listen(*control)
	if err != nil {
		fmt.Println("ERROR :     Port in server address", *control, "is already in use.")
		return 1
	}
	fmt.Println("INFO :      Flower Deployment Runtime: Starting Control API on", *control)
	fmt.Println("INFO :      Flower Deployment Runtime: Starting Fleet API (gRPC-rere) on", *fleet)
	var mu sync.Mutex
	nodes := map[net.Conn]bool{}
	serveLines(cl, func(c net.Conn, _ *bufio.Reader, line string) { fmt.Fprintln(c, reg.control(line)) })
	serveLines(fl, func(c net.Conn, r *bufio.Reader, line string) {
		// "node KEY|CONFIG": KEY is "" for a node without a key.
		key, config, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "node "), "|")
		id, err := reg.activate(key, *auth, c)
		if m := regexp.MustCompile(`flmngr-client-id="([^"]*)"`).FindStringSubmatch(config); err == nil && m != nil &&
			slicesContains(strings.Split(os.Getenv("FAKE_FLOWER_REFUSE"), ","), m[1]) {
			err = errors.New("No SuperNode found with the given public key.")
		}
		if err != nil {
			fmt.Println("ERROR :     [Fleet.ActivateNode] Activation failed:", err)
			fmt.Fprintln(c, "refused "+err.Error())
			return
		}
		fmt.Fprintln(c, "ok "+id)
		fmt.Println("INFO :      [Fleet.ActivateNode] Activated node", id, config)
		mu.Lock()
		nodes[c] = true
		mu.Unlock()
		bye, _ := r.ReadString('\n') // until it goes
		mu.Lock()
		delete(nodes, c)
		mu.Unlock()
		reg.deactivate(id, c, strings.TrimSpace(bye) == "bye")
	})
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
	insecure := fs.Bool("insecure", false, "")
	rootCerts := fs.String("root-certificates", "", "")
	keyFile := fs.String("auth-supernode-private-key", "", "")
	superlink := fs.String("superlink", "0.0.0.0:9092", "")
	appio := fs.String("clientappio-api-address", "0.0.0.0:9094", "")
	nodeConfig := fs.String("node-config", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Println("INFO :      Starting Flower SuperNode")
	var key string
	if *keyFile != "" {
		k, err := nodePublicKey(*keyFile)
		if err != nil {
			fmt.Println("ERROR :     Exit Code: 301 Unable to parse the private key file.")
			return 1
		}
		key = k
	}
	var tlsCfg *tls.Config
	if !*insecure {
		if *rootCerts == "" {
			fmt.Println("ERROR :     Exit Code: 300 No --root-certificates: use --insecure or give the SuperLink's CA certificate")
			return 1
		}
		cfg, err := clientTLS(*rootCerts, *superlink)
		if err != nil {
			fmt.Println("ERROR :     Exit Code: 300 Failed to read the root certificates:", err)
			return 1
		}
		tlsCfg = cfg
	}
	l, err := net.Listen("tcp", *appio)
	if err != nil {
		fmt.Println("ERROR :     Port", *appio, "is already in use")
		return 1
	}
	defer l.Close()
	fmt.Println("INFO :      Flower Deployment Runtime: Starting ClientAppIo API on", *appio)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	for {
		c, err := dial(*superlink, tlsCfg)
		var reply string
		if err == nil {
			reply, err = request(c, "node "+key+"|"+*nodeConfig)
		}
		if verb, why, _ := strings.Cut(reply, " "); verb == "refused" {
			c.Close()
			fmt.Printf("ERROR :     <_InactiveRpcError of RPC that terminated with: status = StatusCode.FAILED_PRECONDITION details = %q>\n", why)
			fmt.Println("RuntimeError: generator didn't yield")
			return 1
		}
		if err != nil || !strings.HasPrefix(reply, "ok ") {
			if c != nil {
				c.Close()
			}
			fmt.Println("WARNING :   Connection attempt failed, retrying in 0.2 seconds")
			select {
			case <-sig:
				fmt.Println("INFO :      SuperNode terminated gracefully.")
				return 0
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		gone := make(chan struct{})
		go func() { _, _ = bufio.NewReader(c).ReadString('\n'); close(gone) }()
		select {
		case <-sig:
			fmt.Fprintln(c, "bye")
			c.Close()
			fmt.Println("INFO :      SuperNode terminated gracefully.")
			return 0
		case <-gone:
			fmt.Printf("ERROR :     Exception calling application: Node ID %s not found\n", strings.TrimPrefix(reply, "ok "))
			return 0
		}
	}
}

// fakeSupernodeCLI is `flwr supernode register|unregister|ls`.
func fakeSupernodeCLI(sub string, pos []string, format, unavailable string) int {
	switch sub {
	case "register":
		if len(pos) != 3 {
			return 2
		}
		b, err := os.ReadFile(pos[0])
		if err != nil {
			fmt.Printf("❌ Public key file '%s' does not exist.\n", pos[0])
			return 1
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey(b)
		if err != nil || !strings.HasPrefix(k.Type(), "ecdsa-sha2-nistp") {
			fmt.Println("Exit Code: 500\nUnsupported key type\nNode authentication requires a valid elliptic curve public key in the SSH format")
			return 1
		}
		reply, ok := controlRequest(pos[1], pos[2], "register "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k))))
		if !ok {
			return answer(map[string]any{"success": false, "error-message": unavailable})
		}
		if format != "json" {
			var a struct {
				Success bool        `json:"success"`
				NodeID  json.Number `json:"node-id"`
				Error   string      `json:"error-message"`
			}
			_ = json.Unmarshal([]byte(reply), &a)
			if !a.Success {
				fmt.Println(a.Error)
				return 0
			}
			fmt.Printf("Loading project configuration...\nSuccess\n✅ SuperNode %s registered successfully.\n", a.NodeID)
			return 0
		}
		fmt.Println(reply)
		return 0
	case "unregister":
		if len(pos) != 3 || format != "json" {
			return 2
		}
		reply, ok := controlRequest(pos[1], pos[2], "unregister "+pos[0])
		if !ok {
			return answer(map[string]any{"success": false, "error-message": unavailable})
		}
		fmt.Println(reply)
		return 0
	case "ls", "list":
		if len(pos) != 2 || format != "json" {
			return 2
		}
		reply, ok := controlRequest(pos[0], pos[1], "ls")
		if !ok {
			return answer(map[string]any{"success": false, "error-message": unavailable})
		}
		fmt.Println(reply)
		return 0
	}
	return 2
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

func fakeFlwr(args []string) int {
	logCall("flwr", args)
	if len(args) < 1 {
		return 2
	}
	sub := ""
	if args[0] == "supernode" && len(args) > 1 {
		sub, args = args[1], args[1:]
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
		_, ok := controlRequest(app, fed, "ping")
		return ok
	}
	if sub != "" {
		return fakeSupernodeCLI(sub, pos, *format, unavailable)
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

// serveLines accepts connections on l until it closes and hands each
// connection's first line to handle, with the reader that read it; a
// connection that sends no line (a plain one to a TLS listener) is closed.
func serveLines(l net.Listener, handle func(c net.Conn, r *bufio.Reader, line string)) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				handle(c, r, line)
			}()
		}
	}()
}
