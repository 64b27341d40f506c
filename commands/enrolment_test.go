package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

func TestUseEnrolment(t *testing.T) {
	const pub = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	token := TokenHash("the-token")
	valid := EnrolmentState{Exists: true, Used: 1, EnrolmentTerms: events.EnrolmentTerms{TokenHash: token, TokenKey: pub, ExpiresAt: at.Add(time.Hour), Uses: 2,
		Attributes: map[string]string{"site": "a"}}}
	use := UseEnrolment{ID: "e1", Token: "the-token", ClientID: "dev1", PublicKey: pub, At: at}
	for _, tc := range []struct {
		name  string
		state EnrolmentState
		cmd   func(UseEnrolment) UseEnrolment
		kind  fault.Kind
		says  string
	}{
		{"last_use", valid, nil, "", ""},
		{"unknown_token", EnrolmentState{}, nil, fault.KindUnauthorized, "not valid"},
		{"wrong_token", valid, func(c UseEnrolment) UseEnrolment { c.Token = "other"; return c }, fault.KindUnauthorized, "not valid"},
		{"expired", valid, func(c UseEnrolment) UseEnrolment { c.At = at.Add(time.Hour); return c }, fault.KindUnauthorized, "expired at 2026-11-26T13:00:00Z"},
		{"used_up", func() EnrolmentState { s := valid; s.Used = 2; return s }(), nil, fault.KindUnauthorized, "used up (2 of 2 uses)"},
		{"bad_client", valid, func(c UseEnrolment) UseEnrolment { c.ClientID = "../x"; return c }, fault.KindInvalid, "user_id"},
		{"bad_key", valid, func(c UseEnrolment) UseEnrolment { c.PublicKey = "SUAAA"; return c }, fault.KindInvalid, "public_key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := use
			if tc.cmd != nil {
				c = tc.cmd(c)
			}
			got, err := c.decide(tc.state)
			if tc.kind == "" {
				if err != nil {
					t.Fatal(err)
				}
				u := got[0].(*events.EnrolmentUsed)
				if u.Remaining != 0 || u.ClientID != "dev1" || u.TokenKey != pub || u.Attributes["site"] != "a" {
					t.Fatalf("%+v", u)
				}
				return
			}
			if fault.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("got %v, want %s saying %q", err, tc.kind, tc.says)
			}
		})
	}
}

func TestEnrolledKeyNeverTakesOverAClient(t *testing.T) {
	const pub = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"
	const other = "UDTDEP4OR5D4MIZTTGQNHVVFWYEP2RUEXMT6K246EYDXW2BLM5UFO57M"
	_, err := IssueClientKey{ClientID: "dev1", PublicKey: other, Enrolment: "e1"}.decide(ClientState{Exists: true, PublicKey: pub})
	if fault.KindOf(err) != fault.KindConflict {
		t.Fatalf("got %v, want conflict", err)
	}
	got, err := IssueClientKey{ClientID: "dev1", PublicKey: other}.decide(ClientState{Exists: true, PublicKey: pub})
	if err != nil || len(got) != 1 {
		t.Fatalf("an operator's new key: %v %v", got, err)
	}
}
