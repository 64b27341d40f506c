package taskd_test

import (
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/taskd"
)

func TestParseLimits(t *testing.T) {
	for _, c := range []struct {
		in   string
		want taskd.Limits
		str  string // canonical form
	}{
		{"", taskd.Limits{}, ""},
		{"  ", taskd.Limits{}, ""},
		{"cpu=2,memory=2GiB,pids=256,walltime=2h", taskd.Limits{CPU: 2, Memory: 2 << 30, PIDs: 256, WallTime: 2 * time.Hour}, "cpu=2,memory=2GiB,pids=256,walltime=2h"},
		{" walltime = 90m , cpu=0.5 ", taskd.Limits{CPU: 0.5, WallTime: 90 * time.Minute}, "cpu=0.5,walltime=1h30m"},
		{"memory=512", taskd.Limits{Memory: 512}, "memory=512"},
		{"memory=512B", taskd.Limits{Memory: 512}, "memory=512"},
		{"memory=1k", taskd.Limits{Memory: 1000}, "memory=1K"},
		{"memory=1KB", taskd.Limits{Memory: 1000}, "memory=1K"},
		{"memory=1Ki", taskd.Limits{Memory: 1024}, "memory=1KiB"},
		{"memory=1kib", taskd.Limits{Memory: 1024}, "memory=1KiB"},
		{"memory=300MiB", taskd.Limits{Memory: 300 << 20}, "memory=300MiB"},
		{"memory=2G", taskd.Limits{Memory: 2e9}, "memory=2G"},
		{"memory=2 GB", taskd.Limits{Memory: 2e9}, "memory=2G"},
		{"memory=1.5GiB", taskd.Limits{Memory: 3 << 29}, "memory=1536MiB"},
		{"memory=1Ti", taskd.Limits{Memory: 1 << 40}, "memory=1TiB"},
		{"memory=3T", taskd.Limits{Memory: 3e12}, "memory=3T"},
		{"memory=1000001", taskd.Limits{Memory: 1000001}, "memory=1000001"},
		{"pids=1", taskd.Limits{PIDs: 1}, "pids=1"},
		{"cpu=0.01", taskd.Limits{CPU: 0.01}, "cpu=0.01"},
		{"walltime=2d", taskd.Limits{WallTime: 48 * time.Hour}, "walltime=48h"},
		{"walltime=1d12h", taskd.Limits{WallTime: 36 * time.Hour}, "walltime=36h"},
		{"walltime=1500ms", taskd.Limits{WallTime: 1500 * time.Millisecond}, "walltime=1.5s"},
		{"walltime=10m", taskd.Limits{WallTime: 10 * time.Minute}, "walltime=10m"},
		{"walltime=1h0m5s", taskd.Limits{WallTime: time.Hour + 5*time.Second}, "walltime=1h0m5s"},
	} {
		got, err := taskd.ParseLimits(c.in)
		if err != nil {
			t.Errorf("ParseLimits(%q): %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("ParseLimits(%q) = %+v, want %+v", c.in, got, c.want)
		}
		if s := got.String(); s != c.str {
			t.Errorf("ParseLimits(%q).String() = %q, want %q", c.in, s, c.str)
		}
		if back, err := taskd.ParseLimits(got.String()); err != nil || back != got {
			t.Errorf("%q does not read back: %+v %v", got.String(), back, err)
		}
	}
}

func TestParseLimitsRejectsBadInput(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{"cpu", `"cpu" is not key=value`},
		{"cpu=", "cpu has no value"},
		{"cpu=2,", "empty item"},
		{",cpu=2", "empty item"},
		{"cpu=2,cpu=3", "cpu given twice"},
		{"gpu=1", `unknown limit "gpu" (known: cpu, memory, pids, walltime)`},
		{"CPU=1", `unknown limit "CPU"`},
		{"cpu=two", "cpu=two: not a number of cores"},
		{"cpu=NaN", "not a number of cores"},
		{"cpu=Inf", "not a number of cores"},
		{"cpu=0", "must be above zero"},
		{"cpu=-1", "must be above zero"},
		{"cpu=0.001", "below the smallest cpu limit, 0.01"},
		{"memory=2XB", `unknown unit "XB"`},
		{"memory=GiB", "not a size"},
		{"memory=-1", "not a size"},
		{"memory=1e9", `unknown unit "e9"`},
		{"memory=1.2.3G", "not a size"},
		{"memory=0", "must be above zero"},
		{"memory=0.1", "must be above zero"},
		{"memory=9999999T", "too large"},
		{"memory=99999999999999999999", "too large"},
		{"memory=99999999999999999999.5", "too large"},
		{"pids=1.5", "not a whole number"},
		{"pids=0", "must be above zero"},
		{"walltime=2", "not a duration"},
		{"walltime=soon", "not a duration"},
		{"walltime=-5m", "must be above zero"},
		{"walltime=0s", "must be above zero"},
		{"walltime=xd", "days must be a whole number"},
		{"walltime=1d-25h", "must be above zero"},
		{"walltime=999999999d", "too long"},
	} {
		_, err := taskd.ParseLimits(c.in)
		if err == nil {
			t.Errorf("ParseLimits(%q) accepted", c.in)
			continue
		}
		if !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "limits") {
			t.Errorf("ParseLimits(%q): %q, want it to say %q", c.in, err, c.err)
		}
	}
}

func TestLimitsMin(t *testing.T) {
	task := taskd.Limits{CPU: 4, Memory: 1 << 30, WallTime: time.Hour}
	ceiling := taskd.Limits{CPU: 2, Memory: 4 << 30, PIDs: 100}
	got := task.Min(ceiling)
	want := taskd.Limits{CPU: 2, Memory: 1 << 30, PIDs: 100, WallTime: time.Hour}
	if got != want {
		t.Fatalf("min %+v, want %+v", got, want)
	}
	if got := task.Min(taskd.Limits{}); got != task {
		t.Fatalf("no ceiling changed the limits: %+v", got)
	}
	if got := (taskd.Limits{}).Min(ceiling); got != ceiling {
		t.Fatalf("an unlimited task is not capped by the ceiling: %+v", got)
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, l := range []taskd.Limits{{CPU: -1}, {CPU: 0.001}, {Memory: -1}, {PIDs: -1}, {WallTime: -time.Second}} {
		if l.Validate() == nil {
			t.Errorf("%+v accepted", l)
		}
		if _, err := taskd.Start(taskd.Config{Argv: []string{"true"}, Limits: l}); err == nil {
			t.Errorf("started with %+v", l)
		}
	}
	if err := (taskd.Limits{CPU: 1, Memory: 1, PIDs: 1, WallTime: 1}).Validate(); err != nil {
		t.Fatal(err)
	}
}
