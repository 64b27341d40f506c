package gateway

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/flmngr/flmngr/services/limit"
)

// Legacy mode lets the original system's tools keep working unchanged:
// its web pages and its edge gateway never send a token. With
// Config.LegacyOpen set, the original's endpoints (POST /<rpc>,
// /upload_files; /download has its own credentials) answer calls without
// the admin token when they come from one of the listed networks, by the
// peer address of the connection (never a header, which anybody can
// send). Everything else, the REST API and the console included, still
// needs the token. The calls let in are counted (flmngr_legacy_calls_total)
// and limited per source address.

// ParseNetworks parses a comma-separated list of networks: CIDR prefixes
// (10.0.0.0/8, fd00::/8) or single addresses. A prefix of length 0, which
// would open the endpoints to every address, is refused.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(f, "/") {
			var err error
			if p, err = netip.ParsePrefix(f); err != nil {
				return nil, fmt.Errorf("network %q: want an address or a CIDR prefix such as 10.0.0.0/8", f)
			}
		} else {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("network %q: want an address or a CIDR prefix such as 10.0.0.0/8", f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("network %q is every address: list the networks the original's tools call from", f)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-unmapShift(p.Addr())).Masked()
		if !p.IsValid() {
			return nil, fmt.Errorf("network %q: want an address or a CIDR prefix such as 10.0.0.0/8", f)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// unmapShift is how many bits an IPv4-mapped IPv6 prefix loses when
// written as IPv4.
func unmapShift(a netip.Addr) int {
	if a.Is4In6() {
		return 96
	}
	return 0
}

// ParseOrigins parses a comma-separated list of origins allowed to call
// the original's endpoints from a browser: "*" or scheme://host[:port].
func ParseOrigins(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		switch {
		case f == "":
			continue
		case f == "*":
		default:
			u, err := url.Parse(f)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
				return nil, fmt.Errorf("origin %q: want * or scheme://host[:port], such as http://10.0.0.5:8000", f)
			}
			f = u.Scheme + "://" + strings.ToLower(u.Host)
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// legacy is the gateway's legacy access: the open networks, the allowed
// origins and the rate of token-less calls per source.
type legacy struct {
	open    []netip.Prefix
	origins []string
	limiter *limit.Limiter
}

// Legacy calls: a source may make 100 at once and 20 a second after that,
// more than the original's pages and edge agents ever make.
const (
	legacyRate  = 20
	legacyBurst = 100
)

func newLegacy(open []netip.Prefix, origins []string) *legacy {
	if len(origins) == 0 && len(open) > 0 {
		origins = []string{"*"}
	}
	return &legacy{open: open, origins: origins, limiter: limit.New(legacyRate, legacyBurst)}
}

// on reports whether some networks are open.
func (l *legacy) on() bool { return len(l.open) > 0 }

// allows reports whether a request comes from an open network.
func (l *legacy) allows(r *http.Request) bool {
	if !l.on() {
		return false
	}
	a, err := netip.ParseAddr(sourceOf(r))
	if err != nil {
		return false
	}
	a = a.Unmap().WithZone("")
	return slices.ContainsFunc(l.open, func(p netip.Prefix) bool { return p.Contains(a) })
}

// cors sets the CORS headers of the original's endpoints on a reply,
// whatever its status: the original's pages read the status and body of
// errors too, and a browser hides them without these headers.
func (l *legacy) cors(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, Idempotency-Key")
	h.Set("Access-Control-Expose-Headers", "Retry-After, WWW-Authenticate")
	if slices.Contains(l.origins, "*") {
		h.Set("Access-Control-Allow-Origin", "*")
		return
	}
	h.Add("Vary", "Origin")
	if o := r.Header.Get("Origin"); o != "" && slices.Contains(l.origins, strings.ToLower(o)) {
		h.Set("Access-Control-Allow-Origin", o)
	}
}

// String describes the legacy access for the startup line.
func (l *legacy) String() string {
	nets := make([]string, len(l.open))
	for i, p := range l.open {
		nets[i] = p.String()
	}
	origins := "none"
	if len(l.origins) > 0 {
		origins = strings.Join(l.origins, ", ")
	}
	return fmt.Sprintf("networks %s; browser origins %s", strings.Join(nets, ", "), origins)
}
