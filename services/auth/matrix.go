package auth

import (
	"strings"
)

// roleAbout says who holds each role.
var roleAbout = map[Role]string{
	RoleAdmin:     "the cloud while it starts (creates and updates the streams), then closed",
	RoleCloud:     "the cloud's services: event log, views, supervisor, matcher, presence, files, process output",
	RoleResponder: "the cloud's connection that answers requests",
	RoleGateway:   "the cloud's HTTP gateway (it acts for whoever holds the admin token)",
	RoleOperator:  "people and scripts: the CLI with operator.creds",
	RoleClient:    "one client agent; `{{name()}}` is its id",
	RoleEnrol:     "a device holding an enrolment token (the token is this identity, a bearer JWT that expires with it); `{{name()}}` is the token's id",
}

// MatrixMarkdown is the permission matrix as a Markdown table: role,
// who holds it, what it may publish and subscribe to. The Security
// document shows it; a test keeps the two equal.
func MatrixMarkdown() string {
	var b strings.Builder
	b.WriteString("| role | held by | may publish to | may subscribe to |\n|---|---|---|---|\n")
	for _, r := range Roles {
		p := Permissions(r)
		pub, sub := "everything", "everything"
		if r != RoleAdmin {
			pub = subjects(p.Pub.Allow, p.Pub.Deny)
			sub = subjects(p.Sub.Allow, p.Sub.Deny)
		}
		b.WriteString("| " + string(r) + " | " + roleAbout[r] + " | " + pub + " | " + sub + " |\n")
	}
	b.WriteString("| system (system account) | the cloud, to push the account to the servers | `$SYS.REQ.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE`, `$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP`, `$SYS.REQ.SERVER.PING.VARZ` | `_INBOX.>` |\n")
	return b.String()
}

func subjects(allow, deny []string) string {
	if len(allow) == 0 {
		return "nothing"
	}
	s := "`" + strings.Join(allow, "`, `") + "`"
	if len(deny) > 0 {
		s += "; except `" + strings.Join(deny, "`, `") + "`"
	}
	return strings.ReplaceAll(s, "|", "\\|")
}
