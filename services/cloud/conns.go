package cloud

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/services/auth"
)

// dial opens a connection of the cloud in role r: to the embedded server
// in-process, or to the external deployment, with an identity of that
// role when the deployment has trust material. Each role has its own
// inbox prefix, so replies to one never reach another.
func (c *Cloud) dial(r auth.Role, name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("flmngr-" + name + " " + c.cfg.Name), nats.CustomInboxPrefix(auth.RoleInboxPrefix(r))}
	if c.Trust != nil {
		creds, err := c.Trust.NewUser(r, "flmngr-"+name)
		if err != nil {
			return nil, err
		}
		opts = append(opts, creds.Option())
	}
	return c.connect(opts...)
}

// connect connects with opts to the embedded server or the external
// deployment.
func (c *Cloud) connect(opts ...nats.Option) (*nats.Conn, error) {
	var nc *nats.Conn
	var err error
	if c.ns != nil {
		nc, err = nats.Connect("", append(opts, nats.InProcessServer(c.ns))...)
	} else {
		opts = append(opts, nats.MaxReconnects(-1), nats.ReconnectWait(500*time.Millisecond))
		if c.cfg.TLSCA != "" {
			opts = append(opts, nats.RootCAs(c.cfg.TLSCA))
		}
		nc, err = nats.Connect(c.cfg.NATSURL, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	c.mu.Lock()
	c.conns = append(c.conns, nc)
	c.mu.Unlock()
	return nc, nil
}

// MinServerVersion is the oldest nats-server flmngr runs on: atomic batch
// publish (events of one command stored together) came in 2.12.
const MinServerVersion = "2.12.0"

// checkServerVersion refuses a server older than MinServerVersion.
func checkServerVersion(nc *nats.Conn) error {
	have := nc.ConnectedServerVersion()
	older, err := versionLess(have, MinServerVersion)
	if err != nil {
		return fmt.Errorf("nats-server at %s reports version %q: %w", nc.ConnectedUrlRedacted(), have, err)
	}
	if older {
		return fmt.Errorf("nats-server %s at %s is too old: flmngr needs %s or newer (atomic batch publish, consumers with several filters)",
			have, nc.ConnectedUrlRedacted(), MinServerVersion)
	}
	return nil
}

// versionLess compares two versions major.minor.patch[-suffix].
func versionLess(a, b string) (bool, error) {
	pa, err := parseVersion(a)
	if err != nil {
		return false, err
	}
	pb, err := parseVersion(b)
	if err != nil {
		return false, err
	}
	for i := range pa {
		if pa[i] != pb[i] {
			return pa[i] < pb[i], nil
		}
	}
	return false, nil
}

func parseVersion(v string) ([3]int, error) {
	var out [3]int
	v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), "-")
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return out, errors.New("not a major.minor.patch version")
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return out, errors.New("not a major.minor.patch version")
		}
		out[i] = n
	}
	return out, nil
}
