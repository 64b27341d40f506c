package commands

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

func TestSuperNodeKeyReport(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	pub, _ := ssh.NewPublicKey(&ec.PublicKey)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
	priv, _ := ssh.MarshalPrivateKey(ec, "")
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edPub, _ := ssh.NewPublicKey(ed.Public())

	reg := &events.ClientRegistered{}
	flower := events.Offer{TaskID: "F", Run: "2", SpecSeq: 3, SuperLinkCA: "-----BEGIN CERTIFICATE-----"}
	process := events.Offer{TaskID: "P", Run: "2", SpecSeq: 3}
	offered := foldClient(reg, &events.ClientOffersChanged{Offers: []events.Offer{flower, process}})
	report := func(task, run, k string) ReportClientTask {
		return ReportClientTask{ClientID: "c", Kind: ClientTaskSuperNodeKey, TaskID: task, Run: run, PublicKey: k}
	}
	cases := []struct {
		name     string
		state    ClientState
		cmd      ReportClientTask
		want     []events.Payload
		wantKind fault.Kind
	}{
		{name: "offered_run", state: offered, cmd: report("F", "2", key+" alice@laptop"),
			want: []events.Payload{&events.ClientSuperNodeKeyReported{TaskID: "F", Run: "2", PublicKey: key}}},
		{name: "not_offered", state: foldClient(reg), cmd: report("F", "2", key), wantKind: fault.KindConflict},
		{name: "another_run", state: offered, cmd: report("F", "1", key), wantKind: fault.KindConflict},
		{name: "not_a_flower_app", state: offered, cmd: report("P", "2", key), wantKind: fault.KindConflict},
		{name: "private_key", state: offered, cmd: report("F", "2", string(pem.EncodeToMemory(priv))), wantKind: fault.KindInvalid},
		{name: "ed25519", state: offered, cmd: report("F", "2", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(edPub)))), wantKind: fault.KindInvalid},
		{name: "two_keys", state: offered, cmd: report("F", "2", key+"\n"+key), wantKind: fault.KindInvalid},
		{name: "empty", state: offered, cmd: report("F", "2", ""), wantKind: fault.KindInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cmd.decide(tc.state)
			checkDecided(t, got, err, tc.want, tc.wantKind)
		})
	}
}

func TestSuperLinkCAIssued(t *testing.T) {
	flower := spec4fe5
	flower.Kind = KindFlowerApp
	ca := &events.TaskSuperLinkCAIssued{Run: "1", Certificate: "-----BEGIN CERTIFICATE-----"}
	rec := RecordRun{TaskID: "4fe5", Event: ca}
	waiting := foldTask(&events.TaskCreated{TaskSpec: flower}, &events.TaskStartRequested{Run: "1"})
	if got, err := rec.decide(waiting); err != nil || len(got) != 1 {
		t.Fatalf("CA of a Flower App run waiting to start: %v %v", got, err)
	}
	withCA := foldTask(&events.TaskCreated{TaskSpec: flower}, &events.TaskStartRequested{Run: "1"}, ca)
	if withCA.SuperLinkCA != ca.Certificate {
		t.Fatalf("the state has CA %q", withCA.SuperLinkCA)
	}
	next := foldTask(&events.TaskCreated{TaskSpec: flower}, &events.TaskStartRequested{Run: "1"}, ca, &events.TaskStopped{Run: "1"}, &events.TaskStartRequested{Run: "2"})
	if next.SuperLinkCA != "" {
		t.Fatal("a new run keeps the CA of the one before")
	}
	process := foldTask(&events.TaskCreated{TaskSpec: spec4fe5}, &events.TaskStartRequested{Run: "1"})
	if _, err := rec.decide(process); fault.KindOf(err) != fault.KindInvalid {
		t.Fatalf("CA of a process task: %v", err)
	}
	running := foldTask(&events.TaskCreated{TaskSpec: flower}, &events.TaskStartRequested{Run: "1"}, &events.TaskServerStarted{Run: "1"})
	if _, err := rec.decide(running); fault.KindOf(err) != fault.KindConflict {
		t.Fatalf("CA of a running run: %v", err)
	}
}
