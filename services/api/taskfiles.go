package api

import (
	"context"
	"io"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
)

// TaskFile is a file to store for a task: the name it is stored under
// and how to read its bytes.
type TaskFile struct {
	Name string
	Open func() (io.ReadCloser, error)
}

// FilePutter stores the bytes of a task's file: the cloud's file store
// (files.Store), or an upload through this API (PutFunc over
// Client.UploadFile).
type FilePutter interface {
	Put(ctx context.Context, task, name string, r io.Reader) (events.FileRef, error)
}

// PutFunc is a function that is a FilePutter.
type PutFunc func(ctx context.Context, task, name string, r io.Reader) (events.FileRef, error)

// Put calls f.
func (f PutFunc) Put(ctx context.Context, task, name string, r io.Reader) (events.FileRef, error) {
	return f(ctx, task, name, r)
}

// StoreTaskFiles stores a task's files with put, in order, then records
// them in one command: clients download what is recorded, and verify
// every byte against it.
func (c *Client) StoreTaskFiles(ctx context.Context, put FilePutter, task string, files []TaskFile) ([]events.FileRef, CommandReply, error) {
	refs := make([]events.FileRef, 0, len(files))
	for _, f := range files {
		rc, err := f.Open()
		if err != nil {
			return nil, CommandReply{}, err
		}
		ref, err := put.Put(ctx, task, f.Name, rc)
		rc.Close()
		if err != nil {
			return nil, CommandReply{}, err
		}
		refs = append(refs, ref)
	}
	r, err := c.RecordTaskFiles(ctx, commands.RecordTaskFiles{TaskID: task, Files: refs})
	if err != nil {
		return nil, CommandReply{}, err
	}
	return refs, r, nil
}
