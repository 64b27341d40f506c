package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/flmngr/flmngr/services/auth"
)

func runClusterConfig(args []string, out io.Writer) error {
	fs := newFlags("cluster-config", "cluster-config --name NAME [--data DIR] [--listen ADDR] [--cluster-listen ADDR --routes URL,…] [--store DIR] [--out FILE]",
		"Prints the nats-server configuration of one node of a cluster that serves\n"+
			"flmngr: the NATS operator it trusts, the system account and the flmngr\n"+
			"account, preloaded in a full resolver. The trust material they come from\n"+
			"is made in --data the first time (identity/keys.json, mode 0600); run\n"+
			"flmngr cloud with the same --data. The configuration holds public keys\n"+
			"and JWTs only.")
	data := fs.String("data", defaultDataDir(), "the cloud's data directory, where the trust material is ($FLMNGR_DATA)")
	name := fs.String("name", "", "the server's name (unique in the cluster)")
	listen := fs.String("listen", "0.0.0.0:4222", "where clients connect")
	clusterName := fs.String("cluster", "flmngr", "the cluster's name")
	clusterListen := fs.String("cluster-listen", "", "where the other servers' routes connect, e.g. 0.0.0.0:6222 (none: a single server)")
	routes := &listFlag{}
	fs.Var(routes, "routes", "the other servers' route URLs, comma-separated (nats://b:6222,nats://c:6222)")
	leaf := fs.String("leafnodes", "", "where edge sites' leaf nodes connect, e.g. 0.0.0.0:7422")
	store := fs.String("store", "", "the server's JetStream directory (default ./nats-NAME/jetstream)")
	jwtDir := fs.String("jwt-dir", "", "where the server keeps the account JWTs (default ./nats-NAME/jwt)")
	outFile := fs.String("out", "", "write the configuration to this file instead of stdout")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	if *name == "" || strings.ContainsAny(*name, " \"'") {
		return fmt.Errorf("%w: --name is required (letters, digits, '-', '_')", errUsage)
	}
	if len(routes.values) > 0 && *clusterListen == "" {
		return fmt.Errorf("%w: --routes needs --cluster-listen", errUsage)
	}
	if *store == "" {
		*store = filepath.Join("nats-"+*name, "jetstream")
	}
	if *jwtDir == "" {
		*jwtDir = filepath.Join("nats-"+*name, "jwt")
	}
	dir, err := filepath.Abs(*data)
	if err != nil {
		return err
	}
	trust, created, err := auth.LoadOrCreateTrust(auth.KeysFile(dir))
	if err != nil {
		return err
	}
	conf, err := trust.ServerConfig(auth.NodeConfig{Name: *name, Listen: *listen, StoreDir: *store, JWTDir: *jwtDir,
		Cluster: *clusterName, ClusterListen: *clusterListen, Routes: routes.values, LeafListen: *leaf})
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(os.Stderr, "flmngr cluster-config: trust material created in %s (keep it secret; flmngr cloud --data %s uses it)\n", auth.KeysFile(dir), dir)
	}
	if *outFile == "" {
		_, err = io.WriteString(out, conf)
		return err
	}
	return os.WriteFile(*outFile, []byte(conf), 0o644)
}
