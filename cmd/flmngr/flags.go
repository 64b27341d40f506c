package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/cloud"
)

const defaultNATS = "nats://127.0.0.1:4222"

// newFlags returns a flag set whose errors come back as one-line usage
// errors; --help prints its usage, once, on stdout.
func newFlags(name, usageLine, about string) *flag.FlagSet {
	fs := flag.NewFlagSet("flmngr "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // parse prints the usage on --help only
	usages[fs] = usageText{line: usageLine, about: about}
	return fs
}

type usageText struct{ line, about string }

// usages are the flag sets' usage texts (one process, one command).
var usages = map[*flag.FlagSet]usageText{}

// printUsage prints a flag set's usage.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	u := usages[fs]
	fmt.Fprintf(w, "Usage: flmngr %s\n\n%s\n\nFlags:\n", u.line, u.about)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// parse parses flags that may come before or after positional arguments
// and returns the positional ones.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				printUsage(os.Stdout, fs)
				return nil, err
			}
			return nil, fmt.Errorf("%w: %v (see --help)", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// connFlags are the flags of every command that talks to a running flmngr.
type connFlags struct {
	url     string
	creds   string
	tlsCA   string
	timeout time.Duration
	json    bool
}

func (c *connFlags) register(fs *flag.FlagSet) {
	def := os.Getenv("FLMNGR_NATS")
	def = cmp.Or(def, defaultNATS)
	fs.StringVar(&c.url, "nats", def, "NATS URL(s) of the flmngr deployment, comma-separated ($FLMNGR_NATS)")
	fs.StringVar(&c.creds, "creds", os.Getenv("FLMNGR_CREDS"), "credentials (.creds) of the identity to connect as ($FLMNGR_CREDS; default: operator.creds in the data directory, $FLMNGR_DATA)")
	fs.StringVar(&c.tlsCA, "tls-ca", os.Getenv("FLMNGR_TLS_CA"), "CA certificate (PEM) to verify the NATS server's TLS certificate with ($FLMNGR_TLS_CA)")
	fs.DurationVar(&c.timeout, "timeout", 15*time.Second, "how long to wait for an answer")
	fs.BoolVar(&c.json, "json", false, "print JSON instead of a table")
}

// operatorCreds is where an operator's credentials are by default: in the
// data directory a local flmngr up (or make run) keeps them in.
func operatorCreds() string { return cloud.OperatorCredsFile(defaultDataDir()) }

// connect connects as an operator: with --creds, or the operator
// credentials of the default data directory when there are some.
func (c *connFlags) connect() (*nats.Conn, *api.Refusals, error) {
	creds := c.creds
	if creds == "" && fileExists(operatorCreds()) {
		creds = operatorCreds()
	}
	opts, identity, err := c.options(creds)
	if err != nil {
		return nil, nil, err
	}
	refusals := api.NewRefusals(identity)
	opts = append(opts, nats.Name("flmngr-cli"), nats.Timeout(min(c.timeout, 5*time.Second)),
		nats.CustomInboxPrefix(auth.RoleInboxPrefix(auth.RoleOperator)), nats.ErrorHandler(refusals.Handler(nil)))
	nc, err := nats.Connect(c.url, opts...)
	if err != nil {
		hint := "pass the operator's credentials with --creds (operator.creds in the cloud's data directory) or $FLMNGR_CREDS"
		if creds == "" {
			hint = "no credentials: " + operatorCreds() + " does not exist; " + hint + ", or set $FLMNGR_DATA to the cloud's data directory"
		}
		return nil, nil, c.connectError(err, hint)
	}
	return nc, refusals, nil
}

// options are the identity and TLS options of a connection, and the
// identity described for error messages.
func (c *connFlags) options(creds string) ([]nats.Option, string, error) {
	var opts []nats.Option
	identity := "without credentials"
	if creds != "" {
		cr, err := auth.ReadCreds(creds)
		if err != nil {
			return nil, "", fmt.Errorf("%w: --creds: %v", errUsage, err)
		}
		opts = append(opts, cr.Option())
		identity = fmt.Sprintf("%q (%s)", cr.Name(), creds)
	}
	if c.tlsCA != "" {
		opts = append(opts, nats.RootCAs(c.tlsCA))
	}
	return opts, identity, nil
}

func (c *connFlags) connectError(err error, credsHint string) error {
	if errors.Is(err, nats.ErrAuthorization) || strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		return fmt.Errorf("flmngr at %s refused the connection: %v (%s)", c.url, err, credsHint)
	}
	return fmt.Errorf("cannot reach flmngr at %s: %v (is 'flmngr up' running? set --nats or $FLMNGR_NATS)", c.url, err)
}

func fileExists(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.Mode().IsRegular()
}

func (c *connFlags) client() (*api.Client, func(), error) {
	nc, refusals, err := c.connect()
	if err != nil {
		return nil, nil, err
	}
	return api.NewClient(nc, c.timeout).WithSource("cli").WithRefusals(refusals), nc.Close, nil
}

// listFlag is a comma-separated list; repeating the flag appends.
type listFlag struct {
	values []string
	set    bool
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }

func (l *listFlag) Set(s string) error {
	if !l.set {
		l.values = nil
	}
	l.set = true
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l.values = append(l.values, v)
		}
	}
	return nil
}

// attrFlag collects key=value pairs; values that parse as JSON scalars
// (numbers, true, false, null) keep their type, others are strings.
type attrFlag map[string]any

func (a attrFlag) String() string { return "" }

func (a attrFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("attribute %q is not key=value", s)
	}
	var parsed any
	if err := json.Unmarshal([]byte(v), &parsed); err == nil {
		switch parsed.(type) {
		case float64, bool, nil:
			a[k] = parsed
			return nil
		}
	}
	a[k] = v
	return nil
}

// defaultDataDir is $FLMNGR_DATA, else $XDG_DATA_HOME/flmngr, else
// ~/.local/share/flmngr.
func defaultDataDir() string {
	if d := os.Getenv("FLMNGR_DATA"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "flmngr")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "flmngr")
	}
	return "flmngr-data"
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
