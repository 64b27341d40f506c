// Package auth gives every party of a deployment its own NATS identity
// with only the permissions its part needs, and keeps them current on
// every NATS server at once.
//
// Identities are NATS JWTs under one account that flmngr controls. The
// trust material (a NATS operator, the system account, the flmngr account
// and one scoped signing key per role) lives in the cloud's data
// directory (identity/keys.json, mode 0600); the servers know only public
// keys and JWTs. Each role's permissions are a template in the account
// JWT (see Roles), so what a party may do is decided by the account, not
// by whoever signed its JWT:
//
//   - admin: the cloud's start-up, which creates and updates the streams;
//     nothing else has stream administration;
//   - cloud: the cloud's services (the event log, views, supervisors, the
//     matcher, files, logs); they append and read, but may not create,
//     change, delete or purge streams;
//   - responder: the connection that answers requests; it may publish only
//     to inboxes, so a request's reply subject can point nowhere else;
//   - gateway: the HTTP gateway; commands, queries and read-only streams;
//   - operator: people and scripts (the CLI with operator.creds); commands
//     and queries only;
//   - client: one key per client agent, named after the client; its own
//     subjects only (its reports, heartbeat and process output; its
//     replies and live events).
//
// A client key is issued by signing a JWT for a public key the client's
// machine made (its seed never leaves that machine) and revoked by
// listing it in the account JWT: Revoker follows the key events of the
// log and pushes the account to the servers, which cut the revoked
// connections at once. Nothing is reloaded and no configuration file is
// edited.
package auth
