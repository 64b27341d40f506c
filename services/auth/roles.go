package auth

import (
	"github.com/nats-io/jwt/v2"
)

// Role is what a party of the deployment is; each role has one scoped
// signing key and one permission template in the account JWT.
type Role string

// Roles.
const (
	RoleAdmin     Role = "admin"
	RoleCloud     Role = "cloud"
	RoleResponder Role = "responder"
	RoleGateway   Role = "gateway"
	RoleOperator  Role = "operator"
	RoleClient    Role = "client"
	RoleEnrol     Role = "enrol"
)

// Roles lists every role, in the order the permission matrix shows them.
var Roles = []Role{RoleAdmin, RoleCloud, RoleResponder, RoleGateway, RoleOperator, RoleClient, RoleEnrol}

// Subjects the roles are about.
const (
	EventsStream = "FLMNGR_EVENTS"
	LogsStream   = "FLMNGR_LOGS"
	FilesStream  = "OBJ_FLMNGR_FILES"
)

// Inbox prefixes: replies to a party come under its own prefix, and the
// responder may publish under _INBOX only.
const (
	inboxRoot     = "_INBOX"
	clientInboxes = inboxRoot + ".client"
	enrolInboxes  = inboxRoot + ".enrol"
)

// EnrolPrefix starts the subjects devices enrol on: EnrolPrefix.<token id>.
const EnrolPrefix = "flmngr.enrol"

// EnrolInboxPrefix is the inbox prefix of a device enrolling with token
// id: the only place the answer to its request may go.
func EnrolInboxPrefix(tokenID string) string { return enrolInboxes + "." + tokenID }

// InboxPrefix is the inbox prefix of client id's connections: replies to
// its requests come there, and nobody else's do.
func InboxPrefix(id string) string { return clientInboxes + "." + id }

// RoleInboxPrefix is the inbox prefix of the other roles' connections.
func RoleInboxPrefix(r Role) string { return inboxRoot + "." + string(r) }

// ReplyAllowed reports whether a request that came on subject may be
// answered on reply: a client's request only on its own inbox prefix, any
// other only on an inbox outside the clients'. It is checked before any
// work is done.
func ReplyAllowed(clientID, reply string) bool {
	if clientID != "" {
		return hasPrefix(reply, InboxPrefix(clientID)+".")
	}
	return hasPrefix(reply, inboxRoot+".") && !hasPrefix(reply, clientInboxes+".") && !hasPrefix(reply, enrolInboxes+".")
}

// EnrolReplyAllowed reports whether an enrolment with token id may be
// answered on reply: only on that token's inbox prefix.
func EnrolReplyAllowed(tokenID, reply string) bool {
	return tokenID != "" && hasPrefix(reply, EnrolInboxPrefix(tokenID)+".")
}

func hasPrefix(s, p string) bool { return len(s) > len(p) && s[:len(p)] == p }

// streamReads are the JetStream API subjects that read a stream without
// changing it, with ephemeral pull consumers.
func streamReads(stream string) []string {
	return []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
		"$JS.API.CONSUMER.CREATE." + stream + ".>",
		"$JS.API.CONSUMER.INFO." + stream + ".>",
		"$JS.API.CONSUMER.DELETE." + stream + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + stream + ".>",
	}
}

// Permissions is the permission matrix: what each role may publish and
// subscribe to. The account JWT carries it as the templates of the
// roles' scoped signing keys ({{name()}} is the user's name: a client's
// id), and the README's Security section is generated from it.
func Permissions(r Role) jwt.Permissions {
	var p jwt.Permissions
	switch r {
	case RoleAdmin:
		// No restriction: used only while the cloud starts, to create
		// and update the streams.
	case RoleCloud:
		p.Pub.Allow.Add("$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$O.FLMNGR_FILES.>", "flmngr.ev.>", "flmngr.logs.>", "flmngr.upload.>")
		p.Pub.Deny.Add("$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.DELETE.>",
			"$JS.API.STREAM.PURGE."+EventsStream, "$JS.API.STREAM.PURGE."+LogsStream, "$JS.API.STREAM.MSG.DELETE.>",
			"$JS.API.STREAM.RESTORE.>", "$JS.API.STREAM.SNAPSHOT.>", "$JS.API.STREAM.PEER.>", "$JS.API.STREAM.LEADER.>",
			"$JS.API.META.>", "$JS.API.SERVER.>", "$JS.API.ACCOUNT.>")
		p.Sub.Allow.Add(RoleInboxPrefix(RoleCloud)+".>", "flmngr.hb.>", "flmngr.clogs.>", "flmngr.logslive.>")
	case RoleResponder:
		p.Pub.Allow.Add(inboxRoot + ".>")
		p.Sub.Allow.Add("flmngr.cmd.>", "flmngr.q.>", "flmngr.admin.>", "flmngr.client.*.*", EnrolPrefix+".*", "$SRV.>")
	case RoleGateway:
		p.Pub.Allow.Add("flmngr.cmd.>", "flmngr.q.>", "flmngr.admin.>")
		p.Pub.Allow.Add(streamReads(EventsStream)...)
		p.Pub.Allow.Add(streamReads(LogsStream)...)
		p.Sub.Allow.Add(RoleInboxPrefix(RoleGateway)+".>", "flmngr.live.>", "flmngr.logslive.>")
	case RoleOperator:
		p.Pub.Allow.Add("flmngr.cmd.>", "flmngr.q.>", "flmngr.admin.>")
		p.Sub.Allow.Add(RoleInboxPrefix(RoleOperator) + ".>")
	case RoleClient:
		p.Pub.Allow.Add("flmngr.client.{{name()}}.>", "flmngr.hb.{{name()}}", "flmngr.clogs.{{name()}}.>")
		p.Sub.Allow.Add(clientInboxes+".{{name()}}.>", "flmngr.live.client.{{name()}}.>")
	case RoleEnrol:
		// A device holding an enrolment token: it may ask to enrol with
		// that token and read the answer, nothing else.
		p.Pub.Allow.Add(EnrolPrefix + ".{{name()}}")
		p.Sub.Allow.Add(enrolInboxes + ".{{name()}}.>")
	}
	return p
}
