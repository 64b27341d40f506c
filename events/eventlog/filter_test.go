package eventlog

import "testing"

func TestSubjectMatches(t *testing.T) {
	for _, c := range []struct {
		subject, filter string
		want            bool
	}{
		{"flmngr.ev.client.c1.registered.v1", "flmngr.ev.client.*.registered.v1", true},
		{"flmngr.ev.client.c1.registered.v1", "flmngr.ev.client.*.info_reported.v1", false},
		{"flmngr.ev.client.c1.registered.v1", "flmngr.ev.task.*.registered.v1", false},
		{"flmngr.ev.client.c1.registered.v1", "flmngr.ev.>", true},
		{"flmngr.ev.client.c1.registered.v1", "flmngr.ev.client.c1.>", true},
		{"flmngr.ev.client.c1.registered.v1", "flmngr.ev.client.c2.>", false},
		{"flmngr.ev.client.c1.registered.v1", "flmngr.ev.client.c1.registered.v1", true},
		{"flmngr.ev.client.c1.registered", "flmngr.ev.client.*.registered.v1", false},
		{"flmngr.ev.client.c1.registered.v1", "flmngr.ev.client.*.registered", false},
		{"flmngr.ev", "flmngr.ev.>", false},
		{"flmngr.ev.x", "flmngr.ev.*", true},
		{"flmngr..x", "flmngr.*.x", false},
	} {
		if got := subjectMatches(c.subject, c.filter); got != c.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", c.subject, c.filter, got, c.want)
		}
	}
}

func TestCoveringFilter(t *testing.T) {
	for _, c := range []struct {
		filters []string
		want    string
	}{
		{[]string{"flmngr.ev.client.*.registered.v1", "flmngr.ev.client.*.offers_changed.v1"}, "flmngr.ev.client.>"},
		{[]string{"flmngr.ev.client.*.key_issued.v1", "flmngr.ev.enrolment.*.used.v1"}, "flmngr.ev.>"},
		{[]string{"flmngr.ev.task.t1.>", "flmngr.ev.task.t1.>"}, "flmngr.ev.task.t1.>"},
		{[]string{"a.b", "c.d"}, ">"},
		{[]string{"a.b", "a.b"}, "a.>"},
		{[]string{"a.b", "a.b.c"}, "a.>"},
		{[]string{"a", "a"}, ">"},
	} {
		got := coveringFilter(c.filters)
		if got != c.want {
			t.Errorf("coveringFilter(%q) = %q, want %q", c.filters, got, c.want)
		}
		// What the filters match, the covering filter matches.
		for _, f := range c.filters {
			if !subjectMatches(concrete(f), got) {
				t.Errorf("%q does not cover %q", got, f)
			}
		}
	}
}

// concrete is a subject a filter matches.
func concrete(filter string) string {
	out := []byte(filter)
	for i := range out {
		if out[i] == '*' || out[i] == '>' {
			out[i] = 'x'
		}
	}
	return string(out)
}
