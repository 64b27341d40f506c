package auth

import (
	"fmt"
	"strings"
)

// NodeConfig describes one nats-server of a cluster that serves flmngr.
type NodeConfig struct {
	// Name is the server's name (unique in the cluster).
	Name string
	// Listen is where clients connect (host:port).
	Listen string
	// StoreDir is the server's JetStream storage.
	StoreDir string
	// JWTDir is where the server keeps the account JWTs it resolves
	// (the "full" resolver: every server has them all).
	JWTDir string
	// Cluster names the cluster; ClusterListen is where routes connect
	// and Routes are the other servers' route URLs. Without ClusterListen
	// the server runs alone.
	Cluster       string
	ClusterListen string
	Routes        []string
	// LeafListen, when set, accepts the leaf nodes of edge sites.
	LeafListen string
}

// ServerConfig is the nats-server configuration of one node: the
// operator it trusts, the system account, and the accounts preloaded in
// its resolver, so that flmngr's identities work on it and the cloud can
// push account updates (revocations) to every node at once.
func (t *Trust) ServerConfig(n NodeConfig) (string, error) {
	op, err := t.OperatorJWT()
	if err != nil {
		return "", err
	}
	sys, err := t.SystemAccountJWT()
	if err != nil {
		return "", err
	}
	acc, err := t.AccountJWT(nil)
	if err != nil {
		return "", err
	}
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
	var b strings.Builder
	fmt.Fprintf(&b, "# nats-server configuration of flmngr node %s, made by flmngr cluster-config.\n", n.Name)
	b.WriteString("# It holds public keys and JWTs only; the secrets stay in the cloud's data directory.\n")
	fmt.Fprintf(&b, "server_name: %s\n", q(n.Name))
	fmt.Fprintf(&b, "listen: %s\n", q(n.Listen))
	fmt.Fprintf(&b, "max_payload: 8MB\n")
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %s\n}\n", q(n.StoreDir))
	if n.ClusterListen != "" {
		routes := make([]string, len(n.Routes))
		for i, r := range n.Routes {
			routes[i] = q(r)
		}
		fmt.Fprintf(&b, "cluster {\n  name: %s\n  listen: %s\n  routes: [%s]\n}\n", q(n.Cluster), q(n.ClusterListen), strings.Join(routes, ", "))
	}
	if n.LeafListen != "" {
		fmt.Fprintf(&b, "leafnodes {\n  listen: %s\n}\n", q(n.LeafListen))
	}
	fmt.Fprintf(&b, "operator: %s\n", op)
	fmt.Fprintf(&b, "system_account: %s\n", t.SystemKey())
	fmt.Fprintf(&b, "resolver: {\n  type: full\n  dir: %s\n  allow_delete: false\n  interval: \"2m\"\n  timeout: \"5s\"\n}\n", q(n.JWTDir))
	fmt.Fprintf(&b, "resolver_preload: {\n  %s: %s\n  %s: %s\n}\n", t.SystemKey(), sys, t.AccountKey(), acc)
	return b.String(), nil
}
