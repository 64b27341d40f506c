package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/testkit"
)

// `client-credentials create --count` gives a fleet its keys in one
// command: one credentials file per client, each a working identity of
// that client only, each revocable on its own.
func TestBulkClientCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: runs flmngr up")
	}
	data, listen := filepath.Join(t.TempDir(), "data"), testkit.FreeAddr(t)
	startUp(t, data, listen)
	bin, err := testkit.BuildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(bin, append(args, "--nats", "nats://"+listen, "--creds", filepath.Join(data, "operator.creds"))...).CombinedOutput()
		return string(out), err
	}
	dir := filepath.Join(t.TempDir(), "fleet")
	out, err := cli("client-credentials", "create", "--count", "12", "--prefix", "site-", "--out", dir)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "12 client keys recorded (site-01 … site-12)") {
		t.Fatalf("output:\n%s", out)
	}
	for i := 1; i <= 12; i++ {
		id := fmt.Sprintf("site-%02d", i)
		p := filepath.Join(dir, id+".creds")
		info, err := os.Stat(p)
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", p, info, err)
		}
		if c, err := auth.ReadCreds(p); err != nil || c.Name() != id {
			t.Fatalf("%s names %q (%v)", p, c.Name(), err)
		}
	}
	// A client reports with its own credentials, and only as itself.
	connect := func(id string) (*nats.Conn, error) {
		cr, err := auth.ReadCreds(filepath.Join(dir, id+".creds"))
		if err != nil {
			t.Fatal(err)
		}
		return nats.Connect("nats://"+listen, cr.Option(), nats.CustomInboxPrefix(auth.InboxPrefix(id)), nats.NoReconnect())
	}
	nc, err := connect("site-07")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := api.NewClient(nc, 5*time.Second)
	if _, err := c.ForClient("site-07").Report(context.Background(), reportRegister()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ForClient("site-08").Report(context.Background(), reportRegister()); err == nil {
		t.Fatal("site-07's key reported for site-08")
	}
	// Revoked, one key stops connecting; the others do not.
	if out, err := cli("client-credentials", "revoke", "site-07"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if nc, err := connect("site-07"); err == nil {
		nc.Close()
		t.Fatal("the revoked key connected again")
	}
	nc8, err := connect("site-08")
	if err != nil {
		t.Fatalf("site-08 after site-07 was revoked: %v", err)
	}
	nc8.Close()
	// Nothing is overwritten without --force, and nothing is issued then.
	out, err = cli("client-credentials", "create", "--count", "12", "--prefix", "site-", "--out", dir)
	if err == nil || !strings.Contains(out, "site-01.creds exists; pass --force") {
		t.Fatalf("created over existing credentials: %v\n%s", err, out)
	}
	for _, bad := range [][]string{{"--count", "3"}, {"--count", "0", "--prefix", "x"}, {"--count", "2", "--prefix", "../x"}, {"one", "--count", "2", "--prefix", "x"}} {
		if out, err := cli(append([]string{"client-credentials", "create", "--out", t.TempDir()}, bad...)...); err == nil {
			t.Errorf("%v accepted:\n%s", bad, out)
		}
	}
}
