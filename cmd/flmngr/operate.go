package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flmngr/flmngr/services/api"
)

// subcommand is one subcommand of a command.
type subcommand struct {
	name string
	run  func([]string, io.Writer) error
}

// subcommands runs the subcommand args[0] of a command (what names
// them: subcommand, role, experiment); with no arguments or --help it
// prints the command's usage.
func subcommands(args []string, out io.Writer, usage, what string, subs ...subcommand) error {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(out, usage)
		if len(args) == 0 {
			article := "a"
			if strings.ContainsRune("aeiou", rune(what[0])) {
				article = "an"
			}
			return fmt.Errorf("%w: %s %s is required (%s)", errUsage, article, what, strings.Join(names, ", "))
		}
		return nil
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(args[1:], out)
		}
	}
	return fmt.Errorf("%w: unknown %s %q (%s)", errUsage, what, args[0], strings.Join(names, ", "))
}

// createOnly checks the subcommand of a command whose one subcommand is
// create. Without one, or with -h, it prints usage and says so (help);
// none is a usage error, and so is any other subcommand.
func createOnly(args []string, out io.Writer, usage string) (help bool, err error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprintln(out, usage)
		if len(args) == 0 {
			return true, fmt.Errorf("%w: a subcommand is required", errUsage)
		}
		return true, nil
	}
	if args[0] != "create" {
		return false, fmt.Errorf("%w: unknown subcommand %q (create)", errUsage, args[0])
	}
	return false, nil
}

// parseNone parses flags and refuses positional arguments.
func parseNone(fs *flag.FlagSet, args []string) error {
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	return nil
}

// parseID parses flags and takes the one positional argument: the ID of
// a task, a user or a client.
func parseID(fs *flag.FlagSet, args []string, what string) (string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return "", err
	}
	id, err := taskID("", pos)
	if err != nil && what != "task" {
		return "", fmt.Errorf("%w: a %s ID is required", errUsage, what)
	}
	return id, err
}

// operate is an operator command's one call: it connects, calls and
// prints the answer, as JSON with --json, else as text.
func operate[T any](cf *connFlags, out io.Writer, call func(context.Context, *api.Client) (T, error), text func(io.Writer, T) error) error {
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	v, err := call(context.Background(), c)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(out, v)
	}
	return text(out, v)
}

// showOne is a "get ID" command: it reads the one task or user (what) ID
// names and prints it, as JSON with --json, else as text.
func showOne[T any](args []string, out io.Writer, name, about, what string, get func(*api.Client, context.Context, string) (T, error), text func(io.Writer, T) error) error {
	fs, cf := newOperatorFlags(name, name+" ID", about)
	id, err := parseID(fs, args, what)
	if err != nil {
		return err
	}
	return operate(cf, out, func(ctx context.Context, c *api.Client) (T, error) { return get(c, ctx, id) }, text)
}

// reported prints a command's reply as "<what> (event N)", or
// "<unchanged>" when the command changed nothing and unchanged is set.
func reported(what, unchanged string) func(io.Writer, api.CommandReply) error {
	return func(out io.Writer, r api.CommandReply) error {
		if unchanged != "" && len(r.Events) == 0 {
			_, err := fmt.Fprintln(out, unchanged)
			return err
		}
		_, err := fmt.Fprintf(out, "%s (event %d)\n", what, r.Seq)
		return err
	}
}

// followWaitMS is how long one request of a followed listing waits for
// news: within --timeout, at most 10 s.
func (c *connFlags) followWaitMS() int {
	return int(min(c.timeout-time.Second, 10*time.Second).Milliseconds())
}

// cacheDir is a directory under the user's cache directory (or the
// temporary directory when there is none).
func cacheDir(elem ...string) string {
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(append([]string{base, "flmngr"}, elem...)...)
}

// newOperatorFlags returns the flag set of a command that talks to a
// running flmngr, with the connection flags registered.
func newOperatorFlags(name, usageLine, about string) (*flag.FlagSet, *connFlags) {
	fs := newFlags(name, usageLine, about)
	cf := &connFlags{}
	cf.register(fs)
	return fs, cf
}

// followPages prints the items of a listing page by page, as JSON lines with
// --json, else with text (flush ends each page); it stops at an empty
// page unless following, and when interrupted.
func followPages[T any](cf *connFlags, out io.Writer, following bool, page func(context.Context, *api.Client) ([]T, error), asJSON func(T) any, text func(T), flush func() error) error {
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	ctx, stop := interrupted()
	defer stop()
	enc := json.NewEncoder(out)
	for {
		items, err := page(ctx, c)
		if err != nil {
			if ctx.Err() != nil {
				return flush()
			}
			return err
		}
		for _, it := range items {
			if !cf.json {
				text(it)
			} else if err := enc.Encode(asJSON(it)); err != nil {
				return err
			}
		}
		if err := flush(); err != nil {
			return err
		}
		if len(items) == 0 && !following {
			return nil
		}
	}
}
