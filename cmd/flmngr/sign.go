package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/api"
)

const signingKeyUsage = `Usage: flmngr signing-key create [--out FILE] [--force]

Makes an operator signing key (an ed25519 NKey) on this machine and prints
its public half. Tasks signed with it (flmngr task sign, or --sign-key on
task create, update and upload) run on the sites that trust it:
  flmngr client --trust PUBLIC_KEY ...
The key never leaves this machine: the cloud stores and forwards the
signatures and cannot make them.`

func runSigningKey(args []string, out io.Writer) error {
	if help, err := createOnly(args, out, signingKeyUsage); help || err != nil {
		return err
	}
	fs := newFlags("signing-key create", "signing-key create [--out FILE] [--force]", "Makes an operator signing key and prints its public key.")
	outFile := fs.String("out", "signing.nk", "where to keep the key's seed (mode 0600)")
	force := fs.Bool("force", false, "replace --out if it exists")
	if pos, err := parse(fs, args[1:]); err != nil {
		return err
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	if fileExists(*outFile) && !*force {
		return fmt.Errorf("%w: %s exists; pass --force to replace it (what it signed stops being trusted where its key is)", errUsage, *outFile)
	}
	kp, err := nkeys.CreateOperator()
	if err != nil {
		return err
	}
	seed, _ := kp.Seed()
	defer clear(seed)
	if err := os.WriteFile(*outFile, append(seed, '\n'), 0o600); err != nil {
		return err
	}
	pub, _ := kp.PublicKey()
	fmt.Fprintf(out, "signing key kept in %s (mode 0600); its public key:\n%s\nSites that trust it: flmngr client --trust %s ...\n", *outFile, pub, pub)
	return nil
}

// readSigningKey reads an NKey seed file.
func readSigningKey(path string) (nkeys.KeyPair, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	defer clear(b)
	kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
	if err != nil {
		return nil, fmt.Errorf("signing key %s: not an NKey seed (make one with flmngr signing-key create): %v", path, err)
	}
	return kp, nil
}

// signKeyFlag registers --sign-key.
func signKeyFlag(fs *flag.FlagSet) *string {
	return fs.String("sign-key", os.Getenv("FLMNGR_SIGN_KEY"), "sign the task as it is afterwards with this operator signing key (flmngr signing-key create) ($FLMNGR_SIGN_KEY)")
}

// signTask signs what a client runs of task id as the cloud has it now,
// here, and records the signature.
func signTask(ctx context.Context, c *api.Client, id, keyFile string) (api.CommandReply, string, error) {
	kp, err := readSigningKey(keyFile)
	if err != nil {
		return api.CommandReply{}, "", err
	}
	t, err := c.Task(ctx, id)
	if err != nil {
		return api.CommandReply{}, "", err
	}
	sig, err := events.SignTask(kp, t.Statement(id))
	if err != nil {
		return api.CommandReply{}, "", err
	}
	r, err := c.SignTask(ctx, commands.SignTask{TaskID: id, TaskSignature: sig})
	return r, sig.PublicKey, err
}

// signIfAsked signs task id when --sign-key is given.
func signIfAsked(ctx context.Context, c *api.Client, id, keyFile string, asJSON bool, out io.Writer) error {
	if keyFile == "" {
		return nil
	}
	r, pub, err := signTask(ctx, c, id, keyFile)
	if err != nil {
		return fmt.Errorf("task %s: not signed: %w", id, err)
	}
	if !asJSON {
		fmt.Fprintf(out, "task %s signed by %s (event %d)\n", id, pub, r.Seq)
	}
	return nil
}

func taskSign(args []string, out io.Writer) error {
	fs := newFlags("task sign", "task sign ID --key FILE", "Signs what a client runs of a task (its client command and arguments, server address and\nfile digests) with an operator signing key kept on this machine.")
	var cf connFlags
	cf.register(fs)
	key := fs.String("key", os.Getenv("FLMNGR_SIGN_KEY"), "the operator signing key (flmngr signing-key create) ($FLMNGR_SIGN_KEY)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	id, err := taskID("", pos)
	if err != nil {
		return err
	}
	if *key == "" {
		return fmt.Errorf("%w: --key is required", errUsage)
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	r, pub, err := signTask(context.Background(), c, id, *key)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(out, r)
	}
	return reported(fmt.Sprintf("task %s signed by %s", id, pub), "")(out, r)
}
