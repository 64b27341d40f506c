package cloud

import "testing"

// A server older than 2.12 is refused (Debian's 2.9.10 lacks consumers
// with several filters and atomic batches); newer ones and pre-releases
// of newer ones are taken.
func TestServerVersionFloor(t *testing.T) {
	for _, tc := range []struct {
		have  string
		older bool
		bad   bool
	}{
		{"2.9.10", true, false},
		{"2.11.9", true, false},
		{"2.12.0", false, false},
		{"2.15.2", false, false},
		{"v2.12.1", false, false},
		{"2.13.0-beta.1", false, false},
		{"3.0.0", false, false},
		{"2.12", false, true},
		{"two", false, true},
	} {
		older, err := versionLess(tc.have, MinServerVersion)
		if (err != nil) != tc.bad || older != tc.older {
			t.Errorf("%s: older %v, err %v; want older %v, error %v", tc.have, older, err, tc.older, tc.bad)
		}
	}
}
