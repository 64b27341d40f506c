package agent

import (
	"strings"
	"testing"

	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/events"
)

func TestAgentRunsOnlyWhatATrustedKeySigned(t *testing.T) {
	trustedKey, _ := nkeys.CreateOperator()
	otherKey, _ := nkeys.CreateOperator()
	trusted, _ := trustedKey.PublicKey()
	args := "--epochs 1"
	offer := events.Offer{TaskID: "T", Run: "1", SpecSeq: 4, Host: "10.0.0.1", Port: 8080, ClientCommand: []string{"python3", "client.py"},
		ClientArguments: &args, Files: []events.FileRef{{Name: "client.py", Size: 3, SHA256: strings.Repeat("a", 64)}}}
	signed := func(kp nkeys.KeyPair, o events.Offer) events.Offer {
		sig, err := events.SignTask(kp, o)
		if err != nil {
			t.Fatal(err)
		}
		o.Signatures = append(o.Signatures, sig)
		return o
	}
	tampered := signed(trustedKey, offer)
	tampered.Files = []events.FileRef{{Name: "client.py", Size: 3, SHA256: strings.Repeat("b", 64)}}
	otherArgs := "--exfiltrate"
	newArgs := signed(trustedKey, offer)
	newArgs.ClientArguments = &otherArgs
	limited := offer
	limited.Limits = "memory=64MiB"
	loosened := signed(trustedKey, limited)
	loosened.Limits = "memory=64GiB"
	rerun := signed(trustedKey, offer)
	rerun.Run, rerun.SpecSeq = "2", 9 // a new run of the same signed task
	a := &Agent{cfg: Config{Trust: []string{trusted}}}
	for _, tc := range []struct {
		name  string
		offer events.Offer
		says  string
	}{
		{"trusted", signed(trustedKey, offer), ""},
		{"new_run", rerun, ""},
		{"trusted_among_others", signed(trustedKey, signed(otherKey, offer)), ""},
		{"unsigned", offer, "is not signed"},
		{"wrong_key", signed(otherKey, offer), "does not trust"},
		{"tampered_digest", tampered, "does not verify"},
		{"changed_arguments", newArgs, "does not verify"},
		{"limited", signed(trustedKey, limited), ""},
		{"loosened_limits", loosened, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := a.trusted(tc.offer)
			switch {
			case tc.says == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.says != "" && (err == nil || !strings.Contains(err.Error(), tc.says)):
				t.Fatalf("got %v, want a refusal saying %q", err, tc.says)
			}
		})
	}
	if err := (&Agent{}).trusted(offer); err != nil {
		t.Fatalf("an agent that trusts no key refused an unsigned task: %v", err)
	}
}
