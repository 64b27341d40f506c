package badger

import (
	"context"
	"errors"
	"fmt"
	"time"

	badgerdb "github.com/dgraph-io/badger/v4"

	fjs "github.com/flmngr/flmngr/events/jetstream"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
)

// errDone ends a replay that reached its target.
var errDone = errors.New("replay done")

// doRebuild drops every view and replays the log up to its last event at
// the time of the call. A marker key makes an interrupted rebuild resume at
// the next Run. Views of tasks and clients are folded in memory; timeline
// entries and, at the end, the views go to Badger in write batches.
func (s *Store) doRebuild(ctx context.Context, src Source) error {
	start := time.Now()
	target, err := src.LastSeq(ctx)
	if err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if err := s.db.DropAll(); err != nil {
		return fmt.Errorf("rebuild: drop views: %w", err)
	}
	s.setApplied(0)
	if err := s.db.Update(func(txn *badgerdb.Txn) error { return txn.Set(rebuildingKey, seqBytes(target)) }); err != nil {
		return fmt.Errorf("rebuild: mark: %w", err)
	}
	tasks := map[string]*projections.TaskView{}
	clients := map[string]*projections.ClientView{}
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	if target > 0 {
		err = src.Follow(ctx, fjs.FollowOptions{From: 1, Batch: 8192}, func(e events.Envelope) error {
			switch e.Aggregate.Kind {
			case events.KindTask:
				v := projections.ApplyTask(tasks[e.Aggregate.ID], e)
				if v == nil {
					delete(tasks, e.Aggregate.ID)
				} else {
					tasks[e.Aggregate.ID] = v
				}
			case events.KindClient:
				clients[e.Aggregate.ID] = projections.ApplyClient(clients[e.Aggregate.ID], e)
			}
			if err := writeTimeline(wb.Set, e); err != nil {
				return err
			}
			if e.Seq >= target {
				return errDone
			}
			return nil
		})
		if !errors.Is(err, errDone) {
			return fmt.Errorf("rebuild: replay: %w", err)
		}
	}
	noDelete := func([]byte) error { return nil }
	if err := writeViews(wb.Set, noDelete, tasks, clients); err != nil {
		return fmt.Errorf("rebuild: write views: %w", err)
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("rebuild: flush: %w", err)
	}
	err = s.db.Update(func(txn *badgerdb.Txn) error {
		if err := txn.Set(checkpointKey, seqBytes(target)); err != nil {
			return err
		}
		return txn.Delete(rebuildingKey)
	})
	if err != nil {
		return fmt.Errorf("rebuild: checkpoint: %w", err)
	}
	s.setApplied(target)
	s.log.Info("views rebuilt", "events", target, "tasks", len(tasks), "clients", len(clients), "took", time.Since(start))
	return nil
}
