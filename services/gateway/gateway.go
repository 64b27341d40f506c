package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/files"
	"github.com/flmngr/flmngr/services/limit"
	"github.com/flmngr/flmngr/services/metrics"
)

// Config configures the gateway.
type Config struct {
	// Listen is the HTTP address (default 127.0.0.1:9001, the original's
	// port, on loopback only).
	Listen string
	// Token is the admin token.
	Token string
	// OpenReads lets reads through without the token.
	OpenReads bool
	// Timeout bounds each request (streams excepted; default 15s).
	Timeout time.Duration
	// MaxBody bounds a JSON body (default 1 MiB); uploads are bounded by
	// the file store's limit.
	MaxBody int64
	// PasswordChecks bounds the download password checks (bcrypt
	// comparisons) under way at once (default half the cores, at least
	// one).
	PasswordChecks int
	// LegacyOpen lists the networks from which the original's endpoints
	// (POST /<rpc> and /upload_files) may be called without the admin
	// token (legacy mode; none by default).
	LegacyOpen []netip.Prefix
	// CORSOrigins are the browser origins whose pages may read the
	// original's endpoints' replies ("*": any; default "*" in legacy
	// mode, none otherwise).
	CORSOrigins []string
	Logger      *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Listen = cmp.Or(c.Listen, "127.0.0.1:9001")
	c.Timeout = cmp.Or(c.Timeout, 15*time.Second)
	c.MaxBody = cmp.Or(c.MaxBody, 1<<20)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Gateway serves HTTP.
type Gateway struct {
	cfg     Config
	token   string
	nc      *nats.Conn
	api     *api.Client
	log     *slog.Logger
	events  *eventlog.Log
	files   *files.Store
	metrics *metrics.Metrics
	mux     *http.ServeMux
	// limiter bounds the original's client calls per user_id, as the
	// cloud does for client agents.
	limiter *limit.Limiter
	// downloads guards the original's /download endpoint.
	downloads *downloadGuard
	sessions  *sessions
	// hubs share the streams' consumers.
	hubs *hubs
	// legacy is the token-less access of the original's tools.
	legacy *legacy
	// caps are the download capabilities this gateway minted.
	caps *capabilities
}

// New returns a gateway talking to flmngr over nc and storing uploads in
// fs; Run serves it.
func New(ctx context.Context, nc *nats.Conn, fs *files.Store, m *metrics.Metrics, cfg Config) (*Gateway, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Token) < 32 {
		return nil, errors.New("gateway: an admin token of at least 32 characters is required")
	}
	log, err := eventlog.Attach(ctx, nc, eventlog.Config{})
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{cfg: cfg, token: cfg.Token, nc: nc, api: api.NewClient(nc, cfg.Timeout).WithSource("gateway"), limiter: limit.New(50, 500),
		downloads: newDownloadGuard(cfg.PasswordChecks), sessions: newSessions(), log: cfg.Logger, events: log, files: fs, metrics: m, mux: http.NewServeMux(),
		legacy: newLegacy(cfg.LegacyOpen, cfg.CORSOrigins), caps: newCapabilities()}
	m.LegacyOpen(g.legacy.on())
	if g.legacy.on() {
		g.log.Warn("legacy mode: the original's endpoints answer without the admin token", "legacy", g.legacy.String())
	}
	g.hubs = newHubs(ctx, log.JetStream(), nc, cfg.Logger, m)
	g.routes()
	return g, nil
}

// Handler is the gateway's HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.mux }

// access is what a route needs.
type access int

const (
	public access = iota
	read
	// write needs the admin token, and from the console's cookie a JSON
	// body (if any) from the console's origin.
	write
	// uploading is write with a multipart/form-data body.
	uploading
)

// handle registers a route with its access level, a time bound (except
// for streams) and panics turned into 500s.
func (g *Gateway) handle(pattern string, level access, stream bool, fn http.HandlerFunc) {
	g.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				g.log.Error("handler panicked", "path", r.URL.Path, "panic", p)
				g.writeError(w, r, fault.Internal(fmt.Errorf("%v", p), "panic"))
			}
			g.metrics.HTTP(pattern, time.Since(start))
		}()
		if level != public {
			if err := g.authorize(r, level); err != nil {
				g.writeError(w, r, err)
				return
			}
		}
		if key := r.Header.Get("Idempotency-Key"); key != "" {
			if !commands.ValidIdempotencyKey(key) {
				g.writeError(w, r, fault.Invalid("Idempotency-Key", "the Idempotency-Key header must be 1-128 printable ASCII characters without spaces"))
				return
			}
			r = r.WithContext(commands.WithIdempotencyKey(r.Context(), key))
		}
		if !stream {
			ctx, cancel := context.WithTimeout(r.Context(), g.cfg.Timeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		fn(w, r)
	})
}

// decode reads a JSON body strictly: a size limit, no unknown fields.
func (g *Gateway) decode(w http.ResponseWriter, r *http.Request, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return err
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fault.Invalid(te.Field, "%s must be %s, not %s", te.Field, te.Type, te.Value)
		}
		if _, after, ok := strings.Cut(err.Error(), `unknown field "`); ok {
			name, _, _ := strings.Cut(after, `"`)
			return fault.Invalid(name, "unknown field %q", name)
		}
		return fault.Invalid("", "bad JSON body: %v", err)
	}
	return nil
}

// Run serves until ctx ends, then shuts down within a bounded time.
func (g *Gateway) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           g.mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	return nil
}
