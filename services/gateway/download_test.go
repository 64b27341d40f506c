package gateway_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// fromSource is a client whose connections come from ip, an address of
// the loopback range: a test can be many sources on one machine.
func fromSource(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 60 * time.Second}
}

// sourceIP is the i-th test source address, 127.1.0.1 on.
func sourceIP(i int) string { return fmt.Sprintf("127.1.%d.%d", i/250, i%250+1) }

// withDownloads creates task id with download credentials user/pass and
// a file a.py.
func (e *env) withDownloads(id, user, pass string) {
	e.t.Helper()
	if code, b := e.json("POST", "/api/v1/tasks", "admin", fmt.Sprintf(`{"task_id":%q,"host":"h","port":1,"username":%q,"password":%q}`, id, user, pass)); code != 201 {
		e.t.Fatalf("create %s: %d %s", id, code, b)
	}
	body, ct := multipartBody(e.t, nil, map[string]string{"a.py": "print('a')\n"})
	if code, _, b := e.do("POST", "/api/v1/tasks/"+id+"/files", "admin", body, ct); code != 200 {
		e.t.Fatalf("upload to %s: %d %s", id, code, b)
	}
}

type answer struct {
	code int
	head http.Header
	body string
	took time.Duration
}

func download(t testing.TB, c *http.Client, url, user, pass string) answer {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	start := time.Now()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{res.StatusCode, res.Header, string(b), time.Since(start)}
}

// wire is an answer as bytes, but for its Date.
func (a answer) wire() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d\n", a.code)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range a.head {
			if k != "Date" && !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(a.head[k], ", "))
	}
	b.WriteString(a.body)
	return b.String()
}

// TestDownloadFailuresAreIndistinguishable asks for a file of an unknown
// task, with an unknown username and with a wrong password: the three
// answers are the same bytes, and each took at least the time of a
// bcrypt comparison (the unknown ones are compared with a dummy hash),
// so neither the answer nor its time tells what exists.
func TestDownloadFailuresAreIndistinguishable(t *testing.T) {
	e := deploy(t, false)
	e.withDownloads("d1", "alice", "right-password")
	c := http.DefaultClient
	if a := download(t, c, e.base+"/download/d1/a.py", "alice", "right-password"); a.code != 200 || a.body != "print('a')\n" {
		t.Fatalf("the right credentials: %d %s", a.code, a.body)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.DefaultCost)
	comparison := time.Hour
	for range 3 {
		start := time.Now()
		_ = bcrypt.CompareHashAndPassword(hash, []byte("y"))
		comparison = min(comparison, time.Since(start))
	}
	cases := []struct{ name, path, user, pass string }{
		{"unknown task", "/download/nope/a.py", "alice", "right-password"},
		{"unknown user", "/download/d1/a.py", "mallory", "right-password"},
		{"wrong password", "/download/d1/a.py", "alice", "wrong-password"},
		{"invalid task id", "/download/..%2f/a.py", "alice", "right-password"},
	}
	var first string
	for _, k := range cases {
		var took []time.Duration
		for i := range 3 {
			a := download(t, c, e.base+k.path, k.user, k.pass)
			if first == "" {
				first = a.wire()
				if a.code != 401 || a.head.Get("WWW-Authenticate") != `Basic realm="Login Required"` {
					t.Fatalf("%s: %s", k.name, first)
				}
			}
			if got := a.wire(); got != first {
				t.Fatalf("%s (try %d) answers\n%s\nwhere the first failure answered\n%s", k.name, i, got, first)
			}
			took = append(took, a.took)
		}
		slices.Sort(took)
		t.Logf("%-15s %v (a bcrypt comparison here: %v)", k.name, took, comparison)
		if took[0] < comparison/2 {
			t.Errorf("%s answered in %v, less than half a bcrypt comparison (%v): it skipped the password work", k.name, took[0], comparison)
		}
	}
}

// TestDownloadRateLimits: a source that asks too often gets 429 with
// Retry-After while another source is still answered; many sources
// asking about one task get 429 too while another task is still
// answered.
func TestDownloadRateLimits(t *testing.T) {
	e := deploy(t, false)
	limited := func(a answer) bool {
		s, err := strconv.Atoi(a.head.Get("Retry-After"))
		return a.code == 429 && err == nil && s >= 1
	}
	one := fromSource("127.0.0.1")
	var got answer
	for i := 0; i < 100 && got.code != 429; i++ {
		got = download(t, one, e.base+"/download/t1/a.py", "", "")
	}
	if !limited(got) {
		t.Fatalf("one source asking 100 times: %d %v %s", got.code, got.head, got.body)
	}
	if a := download(t, fromSource("127.0.0.2"), e.base+"/download/t2/a.py", "", ""); a.code != 401 {
		t.Fatalf("another source: %d %s", a.code, a.body)
	}
	// Ten sources, each within its own limit, about one task.
	got = answer{}
	for i := 0; i < 200 && got.code != 429; i++ {
		got = download(t, fromSource(sourceIP(i%10)), e.base+"/download/t3/a.py", "", "")
		if got.code != 401 && got.code != 429 {
			t.Fatalf("%d %s", got.code, got.body)
		}
	}
	if !limited(got) {
		t.Fatalf("ten sources asking about one task 200 times: %d %v %s", got.code, got.head, got.body)
	}
	if a := download(t, fromSource(sourceIP(20)), e.base+"/download/t4/a.py", "", ""); a.code != 401 {
		t.Fatalf("another task: %d %s", a.code, a.body)
	}
}

// TestDownloadPasswordChecksAreBounded sends more bad passwords at once
// than the gateway checks in a second, from sources and about tasks
// that are each within their limits: the checks beyond the bound are
// refused with 503 and Retry-After instead of waiting for the CPU.
func TestDownloadPasswordChecksAreBounded(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2)) // one check at a time
	e := deploy(t, false)
	const n = 80
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			answers[i] = download(t, fromSource(sourceIP(i)), fmt.Sprintf("%s/download/task%d/a.py", e.base, i), "alice", "guess")
		})
	}
	wg.Wait()
	counts := map[int]int{}
	for _, a := range answers {
		counts[a.code]++
		if a.code == 503 && a.head.Get("Retry-After") == "" {
			t.Fatalf("503 without Retry-After: %v %s", a.head, a.body)
		}
	}
	t.Logf("answers by status: %v", counts)
	if counts[401]+counts[503] != n || counts[503] == 0 || counts[401] == 0 {
		t.Fatalf("%d bad passwords at once: %v, want 401s and 503s only, some of each", n, counts)
	}
}
