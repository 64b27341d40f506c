package jstest

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/testkit"
)

// Cluster is a JetStream cluster of in-process servers on loopback, each
// with its own store under the test's temp dir.
type Cluster struct {
	// Servers are the nodes, named n1, n2, ...; a killed node stays in
	// the slice, shut down.
	Servers []*server.Server
	urls    []string
}

// NewCluster starts an n-node JetStream cluster, routed node to node, and
// returns once it has a meta leader that knows every node. The nodes are
// shut down at the end of the test.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	var err error
	for range 3 { // a reserved route port may be taken meanwhile
		var c *Cluster
		if c, err = startCluster(t, n); err == nil {
			c.waitReady(t)
			return c
		}
	}
	t.Fatalf("nats cluster: %v", err)
	return nil
}

func startCluster(t testing.TB, n int) (*Cluster, error) {
	routePorts, err := testkit.LoopbackPorts(n)
	if err != nil {
		return nil, err
	}
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	base := t.TempDir()
	c := &Cluster{}
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		ns, err := eventlog.StartEmbedded(eventlog.EmbeddedConfig{
			Dir: filepath.Join(base, name), Listen: "127.0.0.1:0", ServerName: name,
			Customize: func(o *server.Options) error {
				o.Cluster.Name = "flmngr-test"
				o.Cluster.Host, o.Cluster.Port = "127.0.0.1", routePorts[i]
				o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
				return nil
			},
		})
		if err != nil {
			c.shutdown()
			return nil, err
		}
		c.Servers = append(c.Servers, ns)
		c.urls = append(c.urls, ns.ClientURL())
	}
	t.Cleanup(c.shutdown)
	return c, nil
}

// waitReady waits until a meta leader knows every node, every node is
// current, and JetStream answers a client.
func (c *Cluster) waitReady(t testing.TB) {
	t.Helper()
	nc := c.Connect(t)
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 30*time.Second, "the nats cluster to elect a meta leader", func() bool {
		leader := false
		for _, s := range c.Servers {
			if !s.JetStreamIsCurrent() {
				return false
			}
			if s.JetStreamIsLeader() && len(s.JetStreamClusterPeers()) == len(c.Servers) {
				leader = true
			}
		}
		if !leader {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.AccountInfo(ctx)
		return err == nil
	})
}

// URLs are the client URLs of every node, comma-separated, as
// nats.Connect and flmngr's --nats take them.
func (c *Cluster) URLs() string { return strings.Join(c.urls, ",") }

// Connect connects to the cluster with every node's URL, so that the
// connection fails over, reconnecting without limit; it is closed at the
// end of the test.
func (c *Cluster) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, opts...)
	nc, err := nats.Connect(c.URLs(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// StreamLeader returns the node leading a stream of the global account, or
// nil while it has none.
func (c *Cluster) StreamLeader(stream string) *server.Server {
	for _, s := range c.Servers {
		if s.Running() && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return s
		}
	}
	return nil
}

// Node returns the running node a connection is on, or nil.
func (c *Cluster) Node(nc *nats.Conn) *server.Server {
	for _, s := range c.Servers {
		if s.Running() && s.ID() == nc.ConnectedServerId() {
			return s
		}
	}
	return nil
}

// Kill shuts a node down and waits until it is gone.
func (c *Cluster) Kill(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

func (c *Cluster) shutdown() {
	for _, s := range c.Servers {
		c.Kill(s)
	}
}

// WaitFor polls cond every few milliseconds until it holds, failing t
// when timeout passes first.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		<-tick.C
	}
}
