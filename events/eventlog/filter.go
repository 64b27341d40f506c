package eventlog

import "strings"

// coveringFilter is the narrowest filter prefix.> that matches every
// subject one of the filters matches: the tokens they all start with, up
// to the first wildcard, and shorter than each of them (> stands for one
// token at least).
func coveringFilter(filters []string) string {
	common := strings.Split(filters[0], ".")
	shortest := len(common)
	for _, f := range filters[1:] {
		tokens := strings.Split(f, ".")
		shortest = min(shortest, len(tokens))
		n := 0
		for n < len(common) && n < len(tokens) && common[n] == tokens[n] {
			n++
		}
		common = common[:n]
	}
	common = common[:min(len(common), shortest-1)]
	for i, tok := range common {
		if tok == "*" || tok == ">" {
			common = common[:i]
			break
		}
	}
	return strings.Join(append(common, ">"), ".")
}

// matchesAny reports whether subject matches one of the filters.
func matchesAny(subject string, filters []string) bool {
	for _, f := range filters {
		if subjectMatches(subject, f) {
			return true
		}
	}
	return false
}

// subjectMatches reports whether a subject (no wildcards) matches a filter
// with NATS wildcards: * stands for one token, > for one or more at the
// end.
func subjectMatches(subject, filter string) bool {
	for {
		ft, frest, fmore := strings.Cut(filter, ".")
		if ft == ">" {
			return subject != ""
		}
		st, srest, smore := strings.Cut(subject, ".")
		if ft != "*" && ft != st || st == "" {
			return false
		}
		if !fmore || !smore {
			return fmore == smore
		}
		filter, subject = frest, srest
	}
}
