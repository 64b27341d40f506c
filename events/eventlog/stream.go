package eventlog

import (
	"cmp"
	"context"

	"github.com/nats-io/nats.go/jetstream"
)

// OpenStream creates or updates a stream kept beside the event log (task
// process output, uploads in progress): on file, with direct gets, cfg's
// Replicas 0 meaning 1 and its MaxBytes 0 or less meaning maxBytes.
func OpenStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, maxBytes int64) error {
	cfg.Replicas = cmp.Or(cfg.Replicas, 1)
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = maxBytes
	}
	cfg.Storage = jetstream.FileStorage
	cfg.AllowDirect = true
	_, err := js.CreateOrUpdateStream(ctx, cfg)
	return err
}
