package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/services/cloud"
)

// namesTask is the task the file name fuzzer uploads to.
const namesTask = "names"

// namesUpload is one way of uploading a file: through the original's
// POST /upload_files or the REST API, with the file name sent as a
// parameter that carries any bytes (RFC 2231 when it must) or quoted as a
// browser does.
type namesUpload struct {
	what    string
	compat  bool
	encoded bool
}

var namesUploads = []namesUpload{
	{"POST /upload_files, RFC 2231 name", true, true},
	{"POST /upload_files, quoted name", true, false},
	{"POST /api/v1/tasks/{id}/files, RFC 2231 name", false, true},
	{"POST /api/v1/tasks/{id}/files, quoted name", false, false},
}

// FuzzUploadDownloadNames uploads a file of any name to one task of a
// running gateway, through the original's form and the REST API, then
// downloads that name. It proves that no name makes the gateway answer
// 5xx; that a name sent as it is (RFC 2231) is stored exactly when
// ValidateFileName accepts it (and, for the original's form, it has no
// '/'), any other being a 400 whose JSON error is about the files; that
// every name the gateway stores, however it was sent, is valid; and that
// a download answers 200 only for a stored name, with that file's bytes,
// and always answers 200 for one.
func FuzzUploadDownloadNames(f *testing.F) {
	for _, name := range []string{
		"ok.py", "dir/ok.py", "models/net.py", "..", "../x", "/etc/passwd", "a/../../x", "a/..", "./a", "a/.", "a//b", "a/",
		"", ".", "...", "a\\b", "..\\x", strings.Repeat("a", 255), strings.Repeat("a", 256), strings.Repeat("a", 5000),
		"\xff\xfe", "caf\xc3", "café.py", "a b.py", "a\"b.py", "a;b=c.py", "a%2Fb", "%2e%2e", "a?b#c", "a\r\nContent-Type: x",
		"a\nb", "a\tb", "'quoted'", "\u202egnp.py", "a*", "filename*=utf-8''x", "~", "-", " ", "x.flmngr-partial",
	} {
		f.Add(name)
	}
	ctx := context.Background()
	c, err := cloud.Open(ctx, cloud.Config{DataDir: filepath.Join(f.TempDir(), "data"), Listen: "127.0.0.1:0", Gateway: "127.0.0.1:0",
		Name: "gw", HashPassword: func(s string) (string, error) {
			// Downloads check the password each time: keep bcrypt cheap.
			h, err := bcrypt.GenerateFromPassword([]byte(s), bcrypt.MinCost)
			return string(h), err
		}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(c.Close)
	base, token := c.GatewayURL(), c.AdminToken
	client := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a redirect is an answer too
	}}
	req, err := http.NewRequest("POST", base+"/api/v1/tasks", strings.NewReader(
		`{"task_id":"`+namesTask+`","host":"localhost","port":8080,"username":"user","password":"pw"}`))
	if err != nil {
		f.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if code, b := namesSend(f, client, req); code != http.StatusCreated {
		f.Fatalf("create task %s: %d %s", namesTask, code, b)
	}
	// stored is what this process stored: the task's files, by name.
	stored := map[string][]byte{}

	f.Fuzz(func(t *testing.T, name string) {
		content := fmt.Appendf(nil, "file %q\n", name)
		for _, up := range namesUploads {
			req := namesUploadRequest(t, base, token, up, name, content)
			code, body := namesSend(t, client, req)
			if code != http.StatusOK && code != http.StatusBadRequest {
				t.Fatalf("%s of %q: %d %s, want 200 or 400", up.what, name, code, body)
			}
			if !json.Valid(body) {
				t.Fatalf("%s of %q: %d with a body that is not JSON: %q", up.what, name, code, body)
			}
			valid := commands.ValidateFileName("files", name) == nil && !(up.compat && strings.Contains(name, "/"))
			if code == http.StatusBadRequest {
				msg := namesErrorOf(up, body)
				if msg == "" {
					t.Fatalf("%s of %q: 400 without an error about the files: %s", up.what, name, body)
				}
				if up.compat && up.encoded && name != "" && !strings.HasPrefix(msg, "Invalid file name") {
					t.Fatalf("%s of %q: 400 %q, want an error naming the file name", up.what, name, msg)
				}
				if up.encoded && valid {
					t.Fatalf("%s of the valid name %q: 400 %s", up.what, name, body)
				}
				continue
			}
			names := namesStored(t, up, body)
			if len(names) != 1 {
				t.Fatalf("%s of %q: 200 storing %d files: %s", up.what, name, len(names), body)
			}
			got := names[0]
			if err := commands.ValidateFileName("files", got); err != nil || (up.compat && strings.Contains(got, "/")) {
				t.Fatalf("%s of %q stored the invalid name %q: %v", up.what, name, got, err)
			}
			if up.encoded && (got != name || !valid) {
				t.Fatalf("%s of %q stored it as %q", up.what, name, got)
			}
			stored[got] = content
		}

		req := namesDownloadRequest(t, base, name)
		code, body := namesDownload(t, req)
		want, ok := stored[name]
		switch {
		case code >= 500:
			t.Fatalf("download of %q: %d %s", name, code, body)
		case ok && (code != http.StatusOK || !bytes.Equal(body, want)):
			t.Fatalf("download of the stored file %q (%s): %d %q, want 200 %q", name, req.URL.EscapedPath(), code, body, want)
		case !ok && code == http.StatusOK:
			t.Fatalf("download of %q, which is not stored (%s): 200 %q", name, req.URL.EscapedPath(), body)
		}
	})
}

// namesUploadRequest builds the upload of one file named name.
func namesUploadRequest(t testing.TB, base, token string, up namesUpload, name string, content []byte) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	target := base + "/api/v1/tasks/" + namesTask + "/files"
	if up.compat {
		target = base + "/upload_files"
		if err := w.WriteField("task_id", namesTask); err != nil {
			t.Fatal(err)
		}
	}
	var part io.Writer
	var err error
	if up.encoded {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", mime.FormatMediaType("form-data", map[string]string{"name": "files", "filename": name}))
		h.Set("Content-Type", "application/octet-stream")
		part, err = w.CreatePart(h)
	} else {
		part, err = w.CreateFormFile("files", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := part.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", target, &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return req
}

// namesDownloadRequest builds GET /download/<task>/<name> with every
// element of the name escaped and the task's credentials.
func namesDownloadRequest(t testing.TB, base, name string) *http.Request {
	t.Helper()
	elems := strings.Split(name, "/")
	for i, e := range elems {
		elems[i] = url.PathEscape(e)
	}
	req, err := http.NewRequest("GET", base+"/download/"+namesTask+"/"+strings.Join(elems, "/"), nil)
	if err != nil {
		t.Fatalf("download request for %q: %v", name, err)
	}
	req.SetBasicAuth("user", "pw")
	return req
}

// namesSources counts the source addresses downloads came from.
var namesSources atomic.Int64

// namesDownload sends a download from a source address of its own, so
// that the per-source limit stays out of the way, and honours the
// per-task limit's Retry-After when a fuzzing run goes past it.
func namesDownload(t testing.TB, req *http.Request) (int, []byte) {
	t.Helper()
	for {
		client := fromSource(sourceIP(int(namesSources.Add(1) % 60000)))
		client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", req.Method, req.URL.EscapedPath(), err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL.EscapedPath(), err)
		}
		if res.StatusCode != http.StatusTooManyRequests {
			return res.StatusCode, b
		}
		wait, err := strconv.Atoi(res.Header.Get("Retry-After"))
		if err != nil || wait < 1 {
			t.Fatalf("429 without a Retry-After: %v", res.Header)
		}
		time.Sleep(time.Duration(wait) * time.Second) // the server said when
	}
}

// namesSend sends a request and returns the status and body.
func namesSend(t testing.TB, client *http.Client, req *http.Request) (int, []byte) {
	t.Helper()
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.EscapedPath(), err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", req.Method, req.URL.EscapedPath(), err)
	}
	return res.StatusCode, b
}

// namesErrorOf returns the message of a 400 about the uploaded files, ""
// if it is not one.
func namesErrorOf(up namesUpload, body []byte) string {
	if up.compat {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil {
			return ""
		}
		for _, known := range []string{"Invalid file name", "No files uploaded", "Invalid multipart body"} {
			if strings.HasPrefix(e.Error, known) {
				return e.Error
			}
		}
		return ""
	}
	var e apiError
	if json.Unmarshal(body, &e) != nil || e.Error.Kind != string(fault.KindInvalid) || e.Error.Field != "files" {
		return ""
	}
	return e.Error.Message
}

// namesStored returns the names a successful upload answered with.
func namesStored(t testing.TB, up namesUpload, body []byte) []string {
	t.Helper()
	if up.compat {
		var r struct {
			Message string   `json:"message"`
			Files   []string `json:"files"`
		}
		if err := json.Unmarshal(body, &r); err != nil || r.Message != "Files uploaded successfully" {
			t.Fatalf("%s: 200 %s: %v", up.what, body, err)
		}
		return r.Files
	}
	var r struct {
		Files []struct {
			Name string `json:"name"`
		} `json:"files"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("%s: 200 %s: %v", up.what, body, err)
	}
	names := make([]string, len(r.Files))
	for i, f := range r.Files {
		names[i] = f.Name
	}
	return names
}
