package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/agent"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/cloud"
)

func fastHash(s string) (string, error) { return "$2a$" + s, nil }

func openCloud(t *testing.T, cfg cloud.Config) *cloud.Cloud {
	t.Helper()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen, cfg.Auth, cfg.Name, cfg.HashPassword = "127.0.0.1:0", true, "auth", fastHash
	c, err := cloud.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// violations collects a connection's permission violations.
type violations struct {
	mu   sync.Mutex
	seen []string
	got  chan struct{}
}

func (v *violations) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	v.mu.Lock()
	v.seen = append(v.seen, err.Error())
	v.mu.Unlock()
	select {
	case v.got <- struct{}{}:
	default:
	}
}

// expect waits for a violation that mentions subject.
func (v *violations) expect(t *testing.T, what, subject string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		v.mu.Lock()
		for _, s := range v.seen {
			if strings.Contains(strings.ToLower(s), "permissions violation") && strings.Contains(s, subject) {
				v.mu.Unlock()
				return
			}
		}
		v.mu.Unlock()
		select {
		case <-v.got:
		case <-deadline:
			t.Fatalf("%s: no permissions violation for %s (saw %v)", what, subject, v.seen)
		}
	}
}

func connectClient(t *testing.T, url, id string, creds auth.Creds, opts ...nats.Option) (*nats.Conn, *violations) {
	t.Helper()
	v := &violations{got: make(chan struct{}, 1)}
	opts = append(opts, creds.Option(), nats.CustomInboxPrefix(auth.InboxPrefix(id)), nats.ErrorHandler(v.handler))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, v
}

// A client connects as itself and can do its own part only: every
// refusal the issue lists is tried here.
func TestClientMayOnlyActForItself(t *testing.T) {
	ctx := context.Background()
	c := openCloud(t, cloud.Config{})
	url := c.ClientURL()

	// No identity, or an unknown one: no connection.
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Fatal("connected without an identity")
	}
	other, _, err := auth.LoadOrCreateTrust(filepath.Join(t.TempDir(), "keys.json"))
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := other.NewUser(auth.RoleClient, "c1")
	if nc, err := nats.Connect(url, stranger.Option()); err == nil {
		nc.Close()
		t.Fatal("connected with credentials another deployment issued")
	}

	// The operator's credentials, from the data directory.
	opCreds, err := auth.ReadCreds(c.OperatorCreds)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{c.OperatorCreds, auth.KeysFile(c.DataDir())} {
		if info, _ := os.Stat(f); info.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", f, info.Mode())
		}
	}
	opConn, err := nats.Connect(url, opCreds.Option(), nats.CustomInboxPrefix(auth.RoleInboxPrefix(auth.RoleOperator)))
	if err != nil {
		t.Fatal(err)
	}
	defer opConn.Close()
	op := api.NewClient(opConn, 5*time.Second)

	// Two tasks with files: A is for cameras, B for nobody.
	for _, task := range []struct{ id, criterion string }{{"A", `"camera" in sensors`}, {"B", `false`}} {
		if _, err := op.CreateTask(ctx, commands.CreateTask{TaskID: task.id, Host: "localhost", Port: 8080, SelectionCriteria: task.criterion, ServerCommand: []string{"sleep", "60"}}); err != nil {
			t.Fatal(err)
		}
		ref, err := c.Files.Put(ctx, task.id, "client.py", strings.NewReader("print('"+task.id+"')\n"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Cmds.Execute(ctx, commands.RecordTaskFiles{TaskID: task.id, Files: []events.FileRef{ref}}); err != nil {
			t.Fatal(err)
		}
		if _, err := op.StartTask(ctx, commands.StartTask{TaskID: task.id}); err != nil {
			t.Fatal(err)
		}
	}

	k1, err := c.IssueClientKey(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := c.IssueClientKey(ctx, "c2")
	if err != nil {
		t.Fatal(err)
	}
	nc2, _ := connectClient(t, url, "c2", k2)
	c2 := api.NewClient(nc2, 5*time.Second).ForClient("c2")
	if _, err := c2.Report(ctx, commands.ReportClientInfo{Register: true, ClientInfo: commands.ClientInfo{Sensors: &[]string{"gps"}}}); err != nil {
		t.Fatal(err)
	}

	nc1, v := connectClient(t, url, "c1", k1)
	c1 := api.NewClient(nc1, 5*time.Second).ForClient("c1")
	if _, err := c1.Report(ctx, commands.ReportClientInfo{Register: true, ClientInfo: commands.ClientInfo{Sensors: &[]string{"camera"}}}); err != nil {
		t.Fatalf("c1 reports itself: %v", err)
	}
	// c1's own offers and history.
	var offers events.Envelope
	deadline := time.Now().Add(10 * time.Second)
	for {
		e, ok, err := c1.LastOffers(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		if ok && len(e.Event.(*events.ClientOffersChanged).Offers) == 1 {
			offers = e
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("c1 was never offered task A")
		}
		time.Sleep(20 * time.Millisecond)
	}
	offered := offers.Event.(*events.ClientOffersChanged).Offers[0]
	if offered.TaskID != "A" {
		t.Fatalf("c1 offered %s", offered.TaskID)
	}
	if h, err := c1.History(ctx, 0); err != nil || len(h) < 2 || h[0].Aggregate.ID != "c1" {
		t.Fatalf("c1's history: %d events, %v", len(h), err)
	}
	// The files of an offered task, and no other.
	if b, err := c1.FileChunk(ctx, "A", offered.Files[0], 0); err != nil || string(b) != "print('A')\n" {
		t.Fatalf("file of offered task A: %q %v", b, err)
	}
	tb, _ := op.Task(ctx, "B")
	if _, err := c1.FileChunk(ctx, "B", tb.Files[0], 0); fault.KindOf(err) != fault.KindForbidden {
		t.Fatalf("file of task B, not offered: %v, want forbidden", err)
	}
	// A body naming another client is refused on c1's own subject.
	raw, err := nc1.Request(api.ClientSubject("c1", api.VerbReport), []byte(`{"user_id":"c2","data_qnt":5}`), 5*time.Second)
	if err != nil || !strings.Contains(string(raw.Data), "forbidden") {
		t.Fatalf("c1 reporting for c2 on its own subject: %s %v", raw.Data, err)
	}

	// What the server refuses outright.
	short := func(subject string, body string) {
		t.Helper()
		_, _ = nc1.Request(subject, []byte(body), 300*time.Millisecond)
		v.expect(t, "request "+subject, subject)
	}
	short(api.ClientSubject("c2", api.VerbReport), `{"data_qnt":1}`) // pose as c2
	short(api.ClientSubject("c2", api.VerbOffers), `{}`)             // read c2's offers
	short(api.ClientSubject("c2", api.VerbFile), `{}`)               // read c2's files
	short(api.SubjectStartTask, `{"task_id":"B"}`)                   // start a task
	short(api.SubjectStopTask, `{"task_id":"A"}`)                    // stop a task
	short(api.SubjectReportClient, `{"user_id":"c2","data_qnt":1}`)  // the operators' client subject
	short(api.SubjectGetClient, `{"user_id":"c2"}`)                  // read c2's record
	short("$JS.API.STREAM.INFO.FLMNGR_EVENTS", ``)                   // the log itself
	short("$JS.API.DIRECT.GET.FLMNGR_EVENTS", `{"seq":1}`)
	if err := nc1.Publish("flmngr.ev.client.c2.info_reported.v1", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	v.expect(t, "write the log", "flmngr.ev.client.c2.info_reported.v1")
	if err := nc1.Publish("flmngr.hb.c2", nil); err != nil {
		t.Fatal(err)
	}
	v.expect(t, "heartbeat as c2", "flmngr.hb.c2")
	for _, subject := range []string{"flmngr.live.client.c2.>", "_INBOX.>", auth.InboxPrefix("c2") + ".>", "flmngr.ev.>", "$O.>"} {
		if _, err := nc1.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		v.expect(t, "subscribe "+subject, subject)
	}

	// Nothing of the above changed anything.
	tA, _ := op.Task(ctx, "A")
	tB, _ := op.Task(ctx, "B")
	if tA.Status != "running" || tB.Status != "running" {
		t.Fatalf("tasks A %s, B %s after c1's attempts", tA.Status, tB.Status)
	}
	u2, err := op.User(ctx, "c2")
	if err != nil || u2.Attributes.DataQnt != 0 {
		t.Fatalf("c2 after c1's attempts: %+v %v", u2.Attributes, err)
	}

	// The operator may not write the log directly either.
	ov := &violations{got: make(chan struct{}, 1)}
	opConn.SetErrorHandler(ov.handler)
	_ = opConn.Publish("flmngr.ev.task.A.deleted.v1", []byte(`{}`))
	ov.expect(t, "operator writes the log", "flmngr.ev.task.A.deleted.v1")

	// A revoked key is cut off and cannot come back.
	closed := make(chan struct{})
	var once sync.Once
	cut := func(*nats.Conn) { once.Do(func() { close(closed) }) }
	nc1.SetClosedHandler(cut)
	nc1.SetDisconnectErrHandler(func(nc *nats.Conn, _ error) { cut(nc) })
	if _, err := op.RevokeClientKey(ctx, commands.RevokeClientKey{ClientID: "c1", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("a revoked client stayed connected")
	}
	if nc, err := nats.Connect(url, k1.Option()); err == nil {
		nc.Close()
		t.Fatal("a revoked key connected again")
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flmngr test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

// With a certificate, the embedded server speaks TLS only: a client that
// trusts the certificate connects, a plain one and one that does not
// trust it do not.
func TestTLS(t *testing.T) {
	cert, key := selfSigned(t)
	c := openCloud(t, cloud.Config{TLSCert: cert, TLSKey: key})
	opCreds, err := auth.ReadCreds(c.OperatorCreds)
	if err != nil {
		t.Fatal(err)
	}
	op := nats.CustomInboxPrefix(auth.RoleInboxPrefix(auth.RoleOperator))
	url := strings.Replace(c.ClientURL(), "nats://", "tls://", 1)
	nc, err := nats.Connect(url, opCreds.Option(), op, nats.RootCAs(cert))
	if err != nil {
		t.Fatalf("TLS with the certificate trusted: %v", err)
	}
	if !nc.TLSRequired() {
		t.Fatal("the connection is not TLS")
	}
	if _, err := api.NewClient(nc, 5*time.Second).Status(context.Background()); err != nil {
		t.Fatalf("a request over TLS: %v", err)
	}
	nc.Close()
	if nc, err := nats.Connect(url, opCreds.Option(), op); err == nil {
		nc.Close()
		t.Fatal("connected without trusting the self-signed certificate")
	}
	plain := strings.Replace(c.ClientURL(), "tls://", "nats://", 1)
	if nc, err := nats.Connect(plain, opCreds.Option(), op, nats.Timeout(2*time.Second)); err == nil && !nc.TLSRequired() {
		nc.Close()
		t.Fatal("a plain connection was accepted")
	}
}

// An edge site's leaf node links to a cloud that speaks TLS when it
// trusts the cloud's certificate, and its client's identity holds over
// that link; a leaf node that does not trust the certificate gets no
// link at all.
func TestLeafNodeOverTLS(t *testing.T) {
	cert, key := selfSigned(t)
	c := openCloud(t, cloud.Config{TLSCert: cert, TLSKey: key, LeafNodes: "127.0.0.1:0"})
	ctx := context.Background()
	creds, err := c.IssueClientKey(ctx, "edge")
	if err != nil {
		t.Fatal(err)
	}
	remote := strings.Replace(c.LeafURL(), "nats-leaf://", "tls://", 1)
	through := func(caFile string) *nats.Conn {
		t.Helper()
		ns, err := agent.StartLeaf(agent.LeafConfig{Name: "leaf-edge", Remotes: []string{remote}, Creds: creds, CAFile: caFile})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
		nc, err := nats.Connect("", nats.InProcessServer(ns), nats.CustomInboxPrefix(auth.InboxPrefix("edge")))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	link := through(cert)
	trusted := api.NewClient(link, 2*time.Second).ForClient("edge")
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := trusted.Report(ctx, commands.ReportClientInfo{ClientInfo: commands.ClientInfo{Sensors: &[]string{"camera"}}, Register: true})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no report through a leaf node that trusts the certificate: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // back-off while the link comes up
	}
	// The identity holds over the link: another client's subjects stay shut.
	if _, err := api.NewClient(link, 2*time.Second).ForClient("other").Report(ctx, commands.ReportClientInfo{Register: true}); err == nil {
		t.Fatal("edge reported as another client through its leaf node")
	}
	untrusted := api.NewClient(through(""), 2*time.Second).ForClient("edge")
	if _, err := untrusted.Report(ctx, commands.ReportClientInfo{Register: true}); fault.KindOf(err) != fault.KindUnavailable {
		t.Fatalf("a leaf node that does not trust the certificate: %v, want unavailable", err)
	}
}
