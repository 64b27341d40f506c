package gateway

import (
	"context"
	"slices"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/api"
)

// storeUpload stores an upload's files for a task and records them. When
// storing or recording fails, what this upload put in the store that
// the task's recorded files do not reference is deleted again: a failed
// upload leaves nothing behind.
func (g *Gateway) storeUpload(ctx context.Context, task string, u *upload) ([]events.FileRef, api.CommandReply, error) {
	var created []string // digests of the objects this upload makes
	files := make([]api.TaskFile, 0, len(u.files))
	for _, f := range u.files {
		if g.files.Verify(ctx, task, f.ref) != nil && !slices.Contains(created, f.ref.SHA256) {
			created = append(created, f.ref.SHA256)
		}
		files = append(files, api.TaskFile{Name: f.ref.Name, Open: f.open})
	}
	refs, res, err := g.api.StoreTaskFiles(ctx, g.files, task, files)
	if err != nil {
		g.dropUnreferenced(ctx, task, created)
		return nil, api.CommandReply{}, err
	}
	return refs, res, nil
}

// dropUnreferenced deletes the objects of a task with the given digests
// that none of its recorded files references. When the task's files
// cannot be read it deletes nothing: an object left over is better than
// a recorded file without its bytes.
func (g *Gateway) dropUnreferenced(ctx context.Context, task string, digests []string) {
	if len(digests) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	t, err := g.api.Task(ctx, task)
	if err != nil && fault.KindOf(err) != fault.KindNotFound {
		g.log.Warn("a failed upload's files are left in the store: the task's files could not be read", "task_id", task, "files", len(digests), "err", err)
		return
	}
	for _, sha := range digests {
		if slices.ContainsFunc(t.Files, func(f events.FileRef) bool { return f.SHA256 == sha }) {
			continue
		}
		if err := g.files.Delete(ctx, task, sha); err != nil {
			g.log.Warn("a failed upload's file is left in the store", "task_id", task, "sha256", sha, "err", err)
		}
	}
}
