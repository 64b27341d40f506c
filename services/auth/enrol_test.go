package auth_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/cloud"
)

// connectToken connects with an enrolment token, as a device does.
func connectToken(t *testing.T, url, tokenID, token string) (*nats.Conn, *violations, error) {
	t.Helper()
	v := &violations{got: make(chan struct{}, 1)}
	nc, err := nats.Connect(url, nats.UserJWT(func() (string, error) { return token, nil }, func([]byte) ([]byte, error) { return nil, nil }),
		nats.CustomInboxPrefix(auth.EnrolInboxPrefix(tokenID)), nats.ErrorHandler(v.handler))
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, v, err
}

// An enrolment token is an identity that may do nothing but enrol: every
// other subject is refused by the server, and a request whose reply
// subject points elsewhere is not answered. Used once, it is refused
// by the cloud (a second device with the same token), and soon after
// (auth.SpentTokenGrace) the server no longer admits it at all; the key the device made connects as its
// client, and no seed ever reaches the cloud.
func TestEnrolmentTokenMayOnlyEnrolOnce(t *testing.T) {
	ctx := context.Background()
	c := openCloud(t, cloud.Config{})
	url := c.ClientURL()
	_, op := operator(t, c)
	tok, err := op.CreateEnrolment(ctx, api.CreateEnrolmentRequest{TTL: time.Hour, Uses: 1, Attributes: map[string]string{"site": "ward-7"}})
	if err != nil {
		t.Fatal(err)
	}
	nc, v, err := connectToken(t, url, tok.ID, tok.Token)
	if err != nil {
		t.Fatal(err)
	}
	before := takeSnapshot(t, c)
	for _, subject := range []string{"flmngr.cmd.task.create", "flmngr.cmd.enrol.create", "flmngr.q.task.list", "flmngr.client.dev1.report",
		"flmngr.hb.dev1", "$JS.API.STREAM.DELETE.FLMNGR_EVENTS", "flmngr.ev.client.dev1.key_issued.v1", "flmngr.admin.rebuild",
		auth.EnrolPrefix + ".someothertoken", "$SRV.INFO"} {
		if err := nc.Publish(subject, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		v.expect(t, "publish "+subject, subject)
	}
	if _, err := nc.SubscribeSync("flmngr.live.>"); err != nil {
		t.Fatal(err)
	}
	v.expect(t, "subscribe", "flmngr.live.>")
	// A request on its own subject answered elsewhere: refused unheard.
	m := nats.NewMsg(auth.EnrolPrefix + "." + tok.ID)
	m.Data, m.Reply = []byte(`{}`), "$JS.API.STREAM.DELETE.FLMNGR_EVENTS"
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	before.equal(t, takeSnapshot(t, c))

	// A wrong token on the right subject is refused.
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	if _, err := api.Enrol(ctx, nc, tok.ID, api.EnrolRequest{Token: tok.Token + "x", ClientID: "dev1", PublicKey: pub}); fault.KindOf(err) != fault.KindUnauthorized {
		t.Fatalf("a wrong token: got %v, want unauthorized", err)
	}
	r, err := api.Enrol(ctx, nc, tok.ID, api.EnrolRequest{Token: tok.Token, ClientID: "dev1", PublicKey: pub})
	if err != nil {
		t.Fatal(err)
	}
	if r.Attributes["site"] != "ward-7" {
		t.Fatalf("attributes %v", r.Attributes)
	}
	// The device's key connects as client dev1.
	seed, _ := kp.Seed()
	dev, _ := connectClient(t, url, "dev1", auth.Creds{JWT: r.JWT, Key: kp})
	if _, err := api.NewClient(dev, 5*time.Second).ForClient("dev1").Report(ctx, commands.ReportClientInfo{Register: true}); err != nil {
		t.Fatalf("the enrolled key cannot act for its client: %v", err)
	}
	// The token is spent: the cloud refuses a second use on a
	// connection made before, and the server admits it no more.
	kp2, _ := nkeys.CreateUser()
	pub2, _ := kp2.PublicKey()
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := api.Enrol(short, nc, tok.ID, api.EnrolRequest{Token: tok.Token, ClientID: "dev2", PublicKey: pub2}); err == nil {
		t.Fatal("a second use of a one-use token was accepted")
	}
	waitFor(t, "the used-up token refused by the server", func() bool {
		nc, _, err := connectToken(t, url, tok.ID, tok.Token)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	// No seed anywhere the cloud keeps things.
	after := takeSnapshot(t, c)
	if strings.Contains(strings.Join(after.events, "\n"), string(seed)) {
		t.Fatal("the device's seed is in the event log")
	}
	if !strings.Contains(strings.Join(after.events, "\n"), pub) {
		t.Fatal("the device's public key is not recorded")
	}
	if strings.Contains(strings.Join(after.events, "\n"), tok.Token) {
		t.Fatal("the token is in the event log")
	}
	// Taking over a client that has a key is refused.
	tok2, err := op.CreateEnrolment(ctx, api.CreateEnrolmentRequest{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	nc2, _, err := connectToken(t, url, tok2.ID, tok2.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Enrol(ctx, nc2, tok2.ID, api.EnrolRequest{Token: tok2.Token, ClientID: "dev1", PublicKey: pub2}); fault.KindOf(err) != fault.KindConflict {
		t.Fatalf("taking over dev1: got %v, want conflict", err)
	}
}
