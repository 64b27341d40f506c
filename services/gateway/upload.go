package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"

	"github.com/flmngr/flmngr/events"
)

// An upload is read whole and checked before anything is stored: the
// number of files, their names and sizes. A refused upload then leaves
// nothing in the file store.

// maxUploadFiles is the most files one upload carries: what a
// RecordTaskFiles command takes at once.
const maxUploadFiles = 256

// maxUpload bounds a whole upload request.
const maxUpload = 256 << 20

// uploadMemory is how many bytes of an upload's files are kept in
// memory; the rest waits in temporary files.
const uploadMemory = 32 << 20

// upload is a multipart body read and checked, its files held until
// they are stored.
type upload struct {
	// fields are the small parts that are not files (the original's
	// task_id).
	fields map[string]string
	files  []*uploaded
	// refused is the first file name refused, with why; the body was
	// read to its end all the same (the original answers a missing
	// task_id before a bad name).
	refused     string
	refusedWhy  error
	memoryLeft  int64
	maxFileSize int64
}

// uploaded is one file of an upload: its reference (digest included)
// and its bytes, in memory or in a temporary file.
type uploaded struct {
	ref  events.FileRef
	mem  []byte
	path string
}

// uploadError is a refusal of the whole body: malformed, too many
// files, a name twice, a file too large. (A body over maxUpload is an
// *http.MaxBytesError.)
type uploadError struct {
	malformed bool
	msg       string
}

func (e *uploadError) Error() string { return e.msg }

// open returns the bytes of a file.
func (f *uploaded) open() (io.ReadCloser, error) {
	if f.path == "" {
		return io.NopCloser(bytes.NewReader(f.mem)), nil
	}
	return os.Open(f.path)
}

// close removes the upload's temporary files.
func (u *upload) close() {
	for _, f := range u.files {
		if f.path != "" {
			_ = os.Remove(f.path)
		}
	}
}

// readUpload reads a multipart body: the parts named field that carry a
// file name are files, whose names validName checks; other parts are
// fields of at most 1 KiB. It refuses the body when it is not multipart,
// is larger than maxUpload, has more than maxUploadFiles files, a file
// larger than maxFileSize or one name twice; it stops reading at the
// first such problem. The caller closes the upload.
func readUpload(w http.ResponseWriter, r *http.Request, field string, maxFileSize int64, validName func(string) error) (*upload, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, &uploadError{msg: fmt.Sprintf("a multipart/form-data body with %q parts is required", field)}
	}
	u := &upload{fields: map[string]string{}, memoryLeft: uploadMemory, maxFileSize: maxFileSize}
	names := map[string]bool{}
	fail := func(err error) (*upload, error) {
		u.close()
		return nil, err
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return u, nil
		}
		if err != nil {
			return fail(orMalformed(err))
		}
		name := rawFileName(part.Header)
		switch {
		case part.FormName() != field || name == "":
			if part.FormName() != field && len(u.fields) < 16 {
				b, err := io.ReadAll(io.LimitReader(part, 1<<10))
				if err != nil {
					return fail(orMalformed(err))
				}
				if _, seen := u.fields[part.FormName()]; !seen {
					u.fields[part.FormName()] = string(b)
				}
			}
		case len(u.files) == maxUploadFiles:
			return fail(&uploadError{msg: fmt.Sprintf("too many files: at most %d at once", maxUploadFiles)})
		case names[name]:
			return fail(&uploadError{msg: fmt.Sprintf("file %s is sent twice", name)})
		case u.refused != "":
			// Already refused: read on for the fields only.
		default:
			if err := validName(name); err != nil {
				u.refused, u.refusedWhy = name, err
				break
			}
			names[name] = true
			f, err := u.keep(name, part)
			if err != nil {
				return fail(err)
			}
			u.files = append(u.files, f)
		}
		part.Close()
	}
}

// orMalformed keeps a refusal and calls any other error reading the
// body malformed.
func orMalformed(err error) error {
	var tooBig *http.MaxBytesError
	var refused *uploadError
	if errors.As(err, &tooBig) || errors.As(err, &refused) {
		return err
	}
	return &uploadError{malformed: true, msg: err.Error()}
}

// keep reads a file's bytes into memory while the upload's memory
// budget lasts and into a temporary file after that, and digests them.
func (u *upload) keep(name string, r io.Reader) (*uploaded, error) {
	h := sha256.New()
	r = io.TeeReader(io.LimitReader(r, u.maxFileSize+1), h)
	inMem := min(u.memoryLeft, u.maxFileSize+1)
	buf, err := io.ReadAll(io.LimitReader(r, inMem))
	if err != nil {
		return nil, orMalformed(err)
	}
	f := &uploaded{ref: events.FileRef{Name: name}}
	n := int64(len(buf))
	if n < inMem {
		u.memoryLeft -= n
		f.mem = buf
		return f, u.checked(f, n, h)
	}
	tmp, err := os.CreateTemp("", "flmngr-upload-*")
	if err != nil {
		return nil, err
	}
	f.path = tmp.Name()
	// Reading errors are the body's; writing errors are this machine's.
	rerr := error(nil)
	_, err = tmp.Write(buf)
	if err == nil {
		var m int64
		m, err = io.Copy(tmp, readErrors{r, &rerr})
		n += m
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	switch {
	case rerr != nil:
		err = orMalformed(rerr)
	case err == nil:
		err = u.checked(f, n, h)
	}
	if err != nil {
		_ = os.Remove(f.path)
		return nil, err
	}
	return f, nil
}

// readErrors keeps the error its reader returned.
type readErrors struct {
	r   io.Reader
	err *error
}

func (e readErrors) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		*e.err = err
	}
	return n, err
}

// checked completes a file's reference, refusing one over the size limit.
func (u *upload) checked(f *uploaded, n int64, h hash.Hash) error {
	if n > u.maxFileSize {
		return &uploadError{msg: fmt.Sprintf("file %s is larger than %d bytes", f.ref.Name, u.maxFileSize)}
	}
	f.ref.Size = n
	f.ref.SHA256 = hex.EncodeToString(h.Sum(nil))
	return nil
}
