package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
)

// Uploads stage the parts of a file sent through the cloud's endpoints
// (operators never write the object store themselves) in a stream of
// their own, until the upload is committed: then the parts are put
// together, checked against the size and digest the sender announced,
// stored, and dropped. An upload that is abandoned or refused leaves
// nothing in the file store, and its parts expire within an hour.
type Uploads struct {
	js    jetstream.JetStream
	store *Store
}

// Staging stream and subjects: flmngr.upload.<upload id>.<part>.
const (
	UploadsStream = "FLMNGR_UPLOADS"
	uploadsPrefix = "flmngr.upload"
	// PartSize is the largest part of an upload.
	PartSize = 512 << 10
)

// UploadsMaxBytes bounds the staging stream by default.
const UploadsMaxBytes = 4 << 30

// OpenUploads creates or updates the staging stream, at most maxBytes (0:
// UploadsMaxBytes); the cloud calls it.
func OpenUploads(ctx context.Context, js jetstream.JetStream, replicas int, maxBytes int64) error {
	err := eventlog.OpenStream(ctx, js, jetstream.StreamConfig{
		Name:        UploadsStream,
		Description: "flmngr uploads in progress: parts of task files not committed yet",
		Subjects:    []string{uploadsPrefix + ".>"},
		Replicas:    replicas,
		MaxAge:      time.Hour,
		MaxBytes:    maxBytes,
		MaxMsgSize:  PartSize + 4<<10,
		Discard:     jetstream.DiscardNew,
		Duplicates:  2 * time.Minute,
	}, UploadsMaxBytes)
	if err != nil {
		return fmt.Errorf("upload stream: %w", err)
	}
	return nil
}

// jsErrCodeStreamStoreFailed is JetStream's "maximum bytes exceeded" and
// kin, which nats.go does not name.
const jsErrCodeStreamStoreFailed jetstream.ErrorCode = 10077

// NewUploads stages uploads through js and commits them to store.
func NewUploads(js jetstream.JetStream, store *Store) *Uploads { return &Uploads{js: js, store: store} }

func partSubject(upload string, part int) string {
	return uploadsPrefix + "." + upload + "." + strconv.Itoa(part)
}

// maxParts bounds an upload by the file size limit.
func (u *Uploads) maxParts() int { return int((u.store.maxSize + PartSize - 1) / PartSize) }

// Part stages one part of an upload; sending it again is harmless.
func (u *Uploads) Part(ctx context.Context, upload string, part int, data []byte) error {
	if !events.ValidID(upload) {
		return fault.Invalid("upload", "upload ids are 1-64 letters, digits, '_' or '-'")
	}
	if part < 0 || part >= u.maxParts() {
		return fault.Invalid("part", "part %d is out of range (a file has at most %d parts of %d bytes)", part, u.maxParts(), PartSize)
	}
	if len(data) == 0 || len(data) > PartSize {
		return fault.Invalid("data", "a part holds 1 to %d bytes, not %d", PartSize, len(data))
	}
	subject := partSubject(upload, part)
	if _, err := u.js.Publish(ctx, subject, data, jetstream.WithMsgID(subject)); err != nil {
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrCodeStreamStoreFailed {
			return fault.Unavailable(err, "uploads are full; try again later")
		}
		return fault.Unavailable(err, "stage part %d", part)
	}
	return nil
}

// Commit puts an upload's parts together as the file name of task,
// checks them against the announced size and digest, stores the file and
// drops the parts, whatever the outcome.
func (u *Uploads) Commit(ctx context.Context, task, upload, name string, parts int, size int64, digest string) (ref events.FileRef, err error) {
	if !events.ValidID(upload) {
		return ref, fault.Invalid("upload", "upload ids are 1-64 letters, digits, '_' or '-'")
	}
	defer func() {
		if perr := u.drop(context.WithoutCancel(ctx), upload); perr != nil && err == nil {
			err = perr
		}
	}()
	if err := commands.ValidateFileName("name", name); err != nil {
		return ref, err
	}
	if parts < 1 || parts > u.maxParts() || size < 1 || size > u.store.maxSize {
		return ref, fault.Invalid("size", "a file has 1 to %d bytes in 1 to %d parts", u.store.maxSize, u.maxParts())
	}
	var buf bytes.Buffer
	next := 0
	scanErr := eventlog.DirectScan(ctx, u.js.Conn(), UploadsStream, uploadsPrefix+"."+upload+".>", 1, func(_ uint64, m *nats.Msg) error {
		if m.Header.Get(jetstream.SubjectHeader) != partSubject(upload, next) {
			return fault.Invalid("parts", "part %d is missing or out of order", next)
		}
		if int64(buf.Len()+len(m.Data)) > size {
			return fault.Invalid("size", "the parts hold more than the announced %d bytes", size)
		}
		buf.Write(m.Data)
		next++
		return nil
	})
	if scanErr != nil {
		if fault.KindOf(scanErr) == fault.KindInvalid {
			return ref, scanErr
		}
		return ref, fault.Unavailable(scanErr, "read upload %s", upload)
	}
	if next != parts || int64(buf.Len()) != size {
		return ref, fault.Invalid("parts", "received %d parts and %d bytes, announced %d and %d", next, buf.Len(), parts, size)
	}
	sum := sha256.Sum256(buf.Bytes())
	if hex.EncodeToString(sum[:]) != digest {
		return ref, fault.Invalid("sha256", "the bytes received do not have the announced SHA-256")
	}
	return u.store.Put(ctx, task, name, &buf)
}

// drop purges an upload's parts.
func (u *Uploads) drop(ctx context.Context, upload string) error {
	s, err := u.js.Stream(ctx, UploadsStream)
	if err != nil {
		return fault.Unavailable(err, "upload stream")
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(uploadsPrefix+"."+upload+".>")); err != nil {
		return fault.Unavailable(err, "drop upload %s", upload)
	}
	return nil
}
