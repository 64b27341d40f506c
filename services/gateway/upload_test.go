package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/services/files"
)

// objects counts the objects in the file store.
func (e *env) objects() int {
	e.t.Helper()
	ctx := context.Background()
	obs, err := e.cloud.Log.JetStream().ObjectStore(ctx, files.Bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	list, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return len(list)
}

// formOf builds a multipart body with fields and then files, in order.
func formOf(t testing.TB, fields [][2]string, files [][2]string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		if err := w.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range files {
		p, err := w.CreateFormFile("files", f[0])
		if err != nil {
			t.Fatal(err)
		}
		p.Write([]byte(f[1]))
	}
	w.Close()
	return &buf, w.FormDataContentType()
}

func manyFiles(n int) [][2]string {
	out := make([][2]string, n)
	for i := range out {
		out[i] = [2]string{fmt.Sprintf("f%05d.py", i), fmt.Sprintf("# %d\n", i)}
	}
	return out
}

// TestRefusedUploadsLeaveNothingBehind sends uploads that are refused
// after some of their files could have been stored, through the REST
// API and the original's form: the file store holds as many objects
// after each as before.
func TestRefusedUploadsLeaveNothingBehind(t *testing.T) {
	e := deploy(t, false)
	if code, b := e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"u1","host":"h","port":1}`); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	body, ct := formOf(t, nil, [][2]string{{"kept.py", "kept\n"}})
	if code, _, b := e.do("POST", "/api/v1/tasks/u1/files", "admin", body, ct); code != 200 {
		t.Fatalf("upload: %d %s", code, b)
	}
	before := e.objects()
	if before != 1 {
		t.Fatalf("%d objects after one upload", before)
	}
	const rest, compat = "/api/v1/tasks/u1/files", "/upload_files"
	task := [][2]string{{"task_id", "u1"}}
	for _, c := range []struct {
		what, path string
		fields     [][2]string
		files      [][2]string
		want       int
		error      string
	}{
		{"a bad name after a good file", rest, nil, [][2]string{{"good.py", "good\n"}, {"../evil.py", "evil\n"}}, 400, "escapes the task directory"},
		{"257 files", rest, nil, manyFiles(257), 400, "too many files"},
		{"10,000 files", rest, nil, manyFiles(10_000), 400, "too many files"},
		{"a name twice", rest, nil, [][2]string{{"twice.py", "1\n"}, {"twice.py", "2\n"}}, 400, "sent twice"},
		{"the original's form, a bad name after a good file", compat, task, [][2]string{{"good.py", "good\n"}, {"d/evil.py", "evil\n"}}, 400, "Invalid file name: d/evil.py"},
		{"the original's form, 257 files", compat, task, manyFiles(257), 400, "too many files"},
		{"the original's form, a name twice", compat, task, [][2]string{{"twice.py", "1\n"}, {"twice.py", "2\n"}}, 400, "sent twice"},
	} {
		body, ct := formOf(t, c.fields, c.files)
		code, _, b := e.do("POST", c.path, "admin", body, ct)
		if code != c.want || !strings.Contains(string(b), c.error) {
			t.Errorf("%s: %d %s, want %d with %q", c.what, code, b, c.want, c.error)
		}
		if n := e.objects(); n != before {
			t.Fatalf("%s: %d objects in the file store, %d before", c.what, n, before)
		}
	}
}

// TestUploadWhoseRecordingFailsLeavesNothingBehind deletes the task
// while its upload is under way: the files are stored, recording them
// fails, and the upload deletes what it stored.
func TestUploadWhoseRecordingFailsLeavesNothingBehind(t *testing.T) {
	e := deploy(t, false)
	if code, b := e.json("POST", "/api/v1/tasks", "admin", `{"task_id":"u2","host":"h","port":1}`); code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	before := e.objects()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, _ := http.NewRequest("POST", e.base+"/api/v1/tasks/u2/files", pr)
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	type result struct {
		code int
		body []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		done <- result{code: res.StatusCode, body: b}
	}()
	// 24 MiB more than the sockets buffer: once they are written, the
	// handler is reading the body, so it found the task.
	p, _ := mw.CreateFormFile("files", "big.bin")
	if _, err := p.Write(bytes.Repeat([]byte("x"), 24<<20)); err != nil {
		t.Fatal(err)
	}
	if code, b := e.json("DELETE", "/api/v1/tasks/u2", "admin", ""); code != 200 {
		t.Fatalf("delete: %d %s", code, b)
	}
	p, _ = mw.CreateFormFile("files", "small.py")
	p.Write([]byte("small\n"))
	mw.Close()
	pw.Close()
	r := <-done
	if r.err != nil || r.code != 404 || !strings.Contains(string(r.body), "not found") {
		t.Fatalf("upload to a task deleted meanwhile: %d %s %v", r.code, r.body, r.err)
	}
	if n := e.objects(); n != before {
		t.Fatalf("%d objects in the file store, %d before", n, before)
	}
}
