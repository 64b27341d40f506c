package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/services/auth"
)

// DialConfig says how a client agent reaches the cloud.
type DialConfig struct {
	ClientID string
	// URL is the cloud's NATS URL(s), comma-separated.
	URL string
	// Creds are the client's credentials (zero: none, for a deployment
	// without authentication).
	Creds auth.Creds
	// CAFile verifies the cloud's certificate.
	CAFile string
	// Leaf, when set, runs a NATS leaf node in the agent linked to these
	// leaf node URLs of the cloud (nats-leaf://cloud:7422), its JetStream
	// keeping the outbox under WorkDir/leaf; it needs Creds.
	Leaf    string
	WorkDir string
	// Attempts bounds the first connection's tries (default 5), with
	// backoff from 200ms: a cloud may be starting.
	Attempts int
	Logger   *slog.Logger
}

// Conn is an agent's way to the cloud.
type Conn struct {
	NC *nats.Conn
	// Journal is the leaf node's JetStream for the outbox (nil without a
	// leaf node: the outbox is a file).
	Journal jetstream.JetStream
	// Where describes what it is connected to, for people.
	Where string
	leaf  *server.Server
}

// Close closes the connection and stops the leaf node.
func (c *Conn) Close() {
	if c.NC != nil {
		c.NC.Close()
	}
	if c.leaf != nil {
		c.leaf.Shutdown()
		c.leaf.WaitForShutdown()
	}
}

// Dial connects an agent to the cloud, directly or through a leaf node of
// its own. A lost link is then retried for ever; the first connection is
// tried cfg.Attempts times with backoff, since a cloud may be starting.
func Dial(ctx context.Context, cfg DialConfig) (*Conn, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Attempts = cmp.Or(cfg.Attempts, 5)
	// Replies come to the client's own inbox: its identity may read no
	// other.
	opts := []nats.Option{nats.Name("flmngr-client " + cfg.ClientID), nats.CustomInboxPrefix(auth.InboxPrefix(cfg.ClientID)),
		nats.MaxReconnects(-1), nats.ReconnectWait(time.Second), nats.Timeout(5 * time.Second)}
	c := &Conn{}
	url := cfg.URL
	if cfg.Leaf != "" {
		if cfg.Creds.Key == nil {
			return nil, errors.New("a leaf node needs the client's credentials")
		}
		ns, err := StartLeaf(LeafConfig{Name: "flmngr-leaf-" + cfg.ClientID, Remotes: strings.Split(cfg.Leaf, ","), Creds: cfg.Creds,
			CAFile: cfg.CAFile, Logger: cfg.Logger, StoreDir: filepath.Join(cfg.WorkDir, "leaf")})
		if err != nil {
			return nil, err
		}
		c.leaf, url = ns, cfg.Leaf
		opts = append(opts, nats.InProcessServer(ns))
	} else {
		if cfg.Creds.Key != nil {
			opts = append(opts, cfg.Creds.Option())
		}
		if cfg.CAFile != "" {
			opts = append(opts, nats.RootCAs(cfg.CAFile))
		}
	}
	var err error
	wait := 200 * time.Millisecond
	for try := 1; ; try++ {
		c.NC, err = nats.Connect(url, opts...)
		if err == nil || try >= cfg.Attempts {
			break
		}
		cfg.Logger.Warn("cannot connect yet; trying again", "attempt", try, "wait", wait, "err", err)
		select {
		case <-ctx.Done():
			c.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	c.Where = c.NC.ConnectedUrlRedacted()
	if c.leaf != nil {
		c.Where = "leaf node linked to " + url
		// The reports that wait for the cloud stay in the leaf node's own
		// JetStream, on this site's disk.
		if c.Journal, err = jetstream.NewWithDomain(c.NC, LeafDomain); err != nil {
			c.Close()
			return nil, fmt.Errorf("leaf journal: %w", err)
		}
	}
	return c, nil
}
