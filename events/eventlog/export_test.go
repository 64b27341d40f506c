package eventlog

import (
	"context"
	"sync/atomic"

	"github.com/flmngr/flmngr/events"
)

// FollowCountingSkipped is Log.Follow that counts the events its tail
// follow read and passed over.
func FollowCountingSkipped(ctx context.Context, l *Log, opts FollowOptions, skipped *atomic.Int64, fn func(events.Envelope) error) error {
	opts.skipped = skipped
	return l.Follow(ctx, opts, fn)
}
