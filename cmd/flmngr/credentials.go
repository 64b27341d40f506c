package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
)

const credentialsUsage = `Usage: flmngr client-credentials create|revoke ID [flags]
       flmngr client-credentials create --count N --prefix P --out DIR

Gives a client agent its own identity on NATS, or takes it away.

  create ID   make a key pair here, record its public half, and write the
              client's credentials (the JWT the cloud signs for that key,
              and its secret seed) to --out (default ./ID.creds, mode
              0600). Copy that file to the client's machine and run:
              flmngr client --id ID --creds ID.creds
              Creating again replaces the key (the old one stops working).
  create --count N --prefix P --out DIR
              the same for N clients at once, named P1 … PN (numbers
              zero-padded to N's width), each credentials file in DIR: a
              fleet's keys in one command, thousands a second. Nothing on
              the NATS servers changes per key: every client key is a JWT
              the cloud signs under the flmngr account.
  revoke ID   stop the client's key from connecting, on every NATS server
              at once; its connections are closed.

A client's identity may only report for itself, read its own offers and
history, and fetch the files of tasks it is offered.`

func runCredentials(args []string, out io.Writer) error {
	return subcommands(args, out, credentialsUsage, "subcommand", subcommand{"create", credentialsCreate}, subcommand{"revoke", credentialsRevoke})
}

func credentialsCreate(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("client-credentials create", "client-credentials create ID [--out FILE] [--force] | --count N --prefix P [--out DIR]",
		"Makes client ID's key pair, records its public key and writes its credentials to --out; with --count, N clients' at once.")
	outFile := fs.String("out", "", "where to write the client's credentials (default ./ID.creds); with --count, the directory (default .)")
	force := fs.Bool("force", false, "replace --out if it exists")
	count := fs.Int("count", 0, "issue keys for this many clients, named --prefix followed by 1 … N")
	prefix := fs.String("prefix", "", "with --count: the start of every client's ID (site- gives site-001 … site-100)")
	parallel := fs.Int("parallel", 64, "with --count: requests in flight at once")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *count != 0 || *prefix != "" {
		return credentialsCreateMany(cf, out, bulkKeys{pos: pos, count: *count, prefix: *prefix, dir: *outFile, force: *force, parallel: *parallel})
	}
	id, err := taskID("", pos)
	if err != nil {
		return fmt.Errorf("%w: a client ID is required", errUsage)
	}
	if *outFile == "" {
		*outFile = id + ".creds"
	}
	if fileExists(*outFile) && !*force {
		return fmt.Errorf("%w: %s exists; pass --force to replace it (the key in it stops working)", errUsage, *outFile)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return err
	}
	return operate(cf, out, func(ctx context.Context, c *api.Client) (issuedCreds, error) {
		r, err := c.IssueClientKey(ctx, commands.IssueClientKey{ClientID: id, PublicKey: auth.PublicKey(kp)})
		if err != nil {
			return issuedCreds{}, err
		}
		if r.JWT == "" {
			return issuedCreds{}, fmt.Errorf("client %s: key recorded (event %d), but this deployment runs without authentication and issues no credentials", id, r.Seq)
		}
		if err := (auth.Creds{JWT: r.JWT, Key: kp}).Write(*outFile, *force); err != nil {
			return issuedCreds{}, fmt.Errorf("the key is recorded but its credentials could not be written (create them again): %w", err)
		}
		return issuedCreds{Creds: *outFile, PublicKey: auth.PublicKey(kp), Seq: r.Seq, UserID: id}, nil
	}, func(out io.Writer, ic issuedCreds) error {
		abs, _ := filepath.Abs(ic.Creds)
		_, err := fmt.Fprintf(out, "client %s: key %s recorded (event %d)\n  credentials written to %s (mode 0600): copy them to the client and run\n    flmngr client --id %s --creds %s\n", ic.UserID, ic.PublicKey, ic.Seq, abs, ic.UserID, filepath.Base(ic.Creds))
		return err
	})
}

// issuedCreds is what client-credentials create did (its --json output).
type issuedCreds struct {
	Creds     string `json:"creds"`
	PublicKey string `json:"public_key"`
	Seq       uint64 `json:"seq"`
	UserID    string `json:"user_id"`
}

func credentialsRevoke(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("client-credentials revoke", "client-credentials revoke ID [--reason TEXT]", "Stops client ID's key from connecting.")
	reason := fs.String("reason", "", "why, for the timeline")
	id, err := parseID(fs, args, "client")
	if err != nil {
		return err
	}
	return operate(cf, out, func(ctx context.Context, c *api.Client) (api.CommandReply, error) {
		return c.RevokeClientKey(ctx, commands.RevokeClientKey{ClientID: id, Reason: *reason})
	}, reported("client "+id+": key revoked", ""))
}
