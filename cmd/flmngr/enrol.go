package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
)

const enrolUsage = `Usage: flmngr enrol create [--ttl 1h] [--uses 1] [--attr k=v]...

Makes a one-time token a device enrols with, so that no secret is made
here and copied to it:

  create   print a token (shown this once; only its hash is recorded).
           On the device run:
             flmngr client --id ID --enrol TOKEN --nats URL
           The device makes its key pair itself, keeps the seed in its
           work directory (mode 0600) and registers only the public key.
           A token is refused once used --uses times or after --ttl.

The token connects to NATS as an identity that may do nothing but enrol.`

func runEnrol(args []string, out io.Writer) error {
	if help, err := createOnly(args, out, enrolUsage); help || err != nil {
		return err
	}
	fs := newFlags("enrol create", "enrol create [--ttl 1h] [--uses 1] [--attr k=v]...", "Prints a token a device enrols with (flmngr client --enrol TOKEN).")
	var cf connFlags
	cf.register(fs)
	ttl := fs.Duration("ttl", time.Hour, "how long the token may be used")
	uses := fs.Int("uses", 1, "how many devices may enrol with it")
	attrs := attrFlag{}
	fs.Var(attrs, "attr", "attribute key=value every client enrolled with the token reports (repeatable)")
	if pos, err := parse(fs, args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	req := api.CreateEnrolmentRequest{TTL: *ttl, Uses: *uses}
	if len(attrs) > 0 {
		req.Attributes = map[string]string{}
		for k, v := range attrs {
			req.Attributes[k] = fmt.Sprint(v)
		}
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	r, err := c.CreateEnrolment(context.Background(), req)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(out, r)
	}
	fmt.Fprintf(out, "enrolment token %s (event %d): %d use(s) until %s\n%s\nOn the device run: flmngr client --id ID --enrol TOKEN --nats %s\n",
		r.ID, r.Seq, r.Uses, r.ExpiresAt.Local().Format(time.RFC3339), r.Token, cf.url)
	return nil
}

// siteIdentity is where a client's identity lives on its device: the
// credentials the device enrolled for, and what the token gave it.
type siteIdentity struct {
	creds, about string
}

func identityIn(workdir string) siteIdentity {
	dir := filepath.Join(workdir, "identity")
	return siteIdentity{creds: filepath.Join(dir, "client.creds"), about: filepath.Join(dir, "enrolment.json")}
}

// enrolment is what a device remembers of its enrolment (no secret).
type enrolment struct {
	ClientID   string            `json:"user_id"`
	Token      string            `json:"token_id"`
	PublicKey  string            `json:"public_key"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// deviceIdentity returns the credentials a client agent started without
// --creds connects with: the ones it enrolled for earlier, or, with a
// token, new ones it enrols for now. Without either it returns none.
func deviceIdentity(ctx context.Context, cf *connFlags, id, token, workdir string, out io.Writer) (auth.Creds, map[string]string, error) {
	si := identityIn(workdir)
	if fileExists(si.creds) {
		creds, err := auth.ReadCreds(si.creds)
		if err != nil {
			return auth.Creds{}, nil, err
		}
		if name := creds.Name(); name != id {
			return auth.Creds{}, nil, fmt.Errorf("%w: %s enrolled this work directory as client %q, not %q", errUsage, si.creds, name, id)
		}
		var e enrolment
		if b, err := os.ReadFile(si.about); err == nil {
			_ = json.Unmarshal(b, &e)
		}
		if token != "" {
			fmt.Fprintf(out, "client %s is enrolled already (%s): the token is not used\n", id, si.creds)
		}
		return creds, e.Attributes, nil
	}
	if token == "" {
		return auth.Creds{}, nil, nil
	}
	return enrolDevice(ctx, cf, id, token, si, out)
}

// enrolDevice makes the device's key pair here, registers its public key
// with the token and keeps the credentials in the work directory.
func enrolDevice(ctx context.Context, cf *connFlags, id, token string, si siteIdentity, out io.Writer) (auth.Creds, map[string]string, error) {
	claims, err := jwt.DecodeUserClaims(token)
	if err != nil || claims.Name == "" {
		return auth.Creds{}, nil, fmt.Errorf("%w: --enrol: not an enrolment token (flmngr enrol create prints one)", errUsage)
	}
	tokenID := claims.Name
	if claims.Expires != 0 && !time.Now().Before(time.Unix(claims.Expires, 0)) {
		return auth.Creds{}, nil, fmt.Errorf("enrolment token %s expired at %s: ask the operator for a new one (flmngr enrol create)",
			tokenID, time.Unix(claims.Expires, 0).Local().Format(time.RFC3339))
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return auth.Creds{}, nil, err
	}
	// The token is a bearer identity: nothing to sign with.
	opts := []nats.Option{nats.Name("flmngr-enrol " + id), nats.CustomInboxPrefix(auth.EnrolInboxPrefix(tokenID)), nats.Timeout(5 * time.Second),
		nats.UserJWT(func() (string, error) { return token, nil }, func([]byte) ([]byte, error) { return nil, nil })}
	if cf.tlsCA != "" {
		opts = append(opts, nats.RootCAs(cf.tlsCA))
	}
	nc, err := nats.Connect(cf.url, opts...)
	if errors.Is(err, nats.ErrAuthorization) || (err != nil && strings.Contains(strings.ToLower(err.Error()), "authorization violation")) {
		// It has not expired: the servers stop admitting a token once
		// it is used up.
		return auth.Creds{}, nil, fmt.Errorf("enrolment token %s is used up or not this deployment's: flmngr at %s refused it; ask the operator for a new one (flmngr enrol create)", tokenID, cf.url)
	}
	if err != nil {
		return auth.Creds{}, nil, cf.connectError(err, "")
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	r, err := api.Enrol(ctx, nc, tokenID, api.EnrolRequest{Token: token, ClientID: id, PublicKey: auth.PublicKey(kp)})
	if err != nil {
		return auth.Creds{}, nil, fmt.Errorf("enrol as client %s: %w", id, err)
	}
	creds := auth.Creds{JWT: r.JWT, Key: kp}
	if err := creds.Write(si.creds, false); err != nil {
		return auth.Creds{}, nil, fmt.Errorf("client %s is enrolled but its credentials could not be kept (enrol again with a new token): %w", id, err)
	}
	b, _ := json.MarshalIndent(enrolment{ClientID: id, Token: tokenID, PublicKey: auth.PublicKey(kp), Attributes: r.Attributes}, "", "  ")
	if err := os.WriteFile(si.about, append(b, '\n'), 0o600); err != nil {
		return auth.Creds{}, nil, err
	}
	fmt.Fprintf(out, "client %s enrolled with token %s (event %d): key %s registered; its seed stays in %s (mode 0600)\n",
		id, tokenID, r.Seq, auth.PublicKey(kp), si.creds)
	return creds, r.Attributes, nil
}

// withEnrolledAttributes adds the attributes a token gave the client to
// what it reports, unless it sets them itself.
func withEnrolledAttributes(in commands.ClientInfo, attrs map[string]string) commands.ClientInfo {
	if len(attrs) == 0 {
		return in
	}
	extra := map[string]any{}
	for k, v := range attrs {
		extra[k] = v
	}
	maps.Copy(extra, in.Extra)
	in.Extra = extra
	return in
}
