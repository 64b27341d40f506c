package commands_test

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

func sampleAttributes() events.ClientAttributes {
	acc := 0.9
	return events.ClientAttributes{
		Sensors:       []string{"camera", "ecu", "lidar", "gps"},
		DataQnt:       1 << 40,
		AvgAccContrib: &acc,
		Extra:         map[string]any{"region": "eu", "gpu": true, "cores": 8.0, "note": strings.Repeat("n", 1024)},
	}
}

// TestCriteriaStillWork keeps the language operators use.
func TestCriteriaStillWork(t *testing.T) {
	cases := map[string]bool{
		`"camera" in sensors`:                                      true,
		`data_qnt > 50 && attrs.region == "eu"`:                    true,
		`avg_acc_contrib != nil && avg_acc_contrib > 0.5`:          true,
		`any(sensors, # startsWith "li")`:                          true,
		`count(sensors, len(#) > 3) == 2`:                          true,
		`all(sensors, any(sensors, # != ""))`:                      true,
		`len(filter(sensors, # matches "^[a-z]+$")) == 4`:          true,
		`user_id + "-x" == "alice-x" && upper(user_id) == "ALICE"`: true,
		`attrs.cores in 1..16 && attrs.gpu`:                        true,
		`none(sensors, # == "radar")`:                              true,
		`"radar" in sensors`:                                       false,
	}
	for src, want := range cases {
		c, err := commands.CompileCriterion(src)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		got, err := c.Match("alice", sampleAttributes())
		if err != nil || got != want {
			t.Errorf("%s: got %v, %v; want %v", src, got, err, want)
		}
	}
}

// nest builds f(f(…f(inner)…)) n levels deep, where f has %s for its
// argument.
func nest(f, inner string, n int) string {
	s := inner
	for range n {
		s = fmt.Sprintf(f, s)
	}
	return s
}

// TestAbusiveCriteriaAreStopped lists criteria that would loop or
// allocate without limit: each is refused when compiled or stopped with an
// error when evaluated, quickly and without using much memory.
func TestAbusiveCriteriaAreStopped(t *testing.T) {
	long := `"` + strings.Repeat("a", 1000) + `"`
	cases := []struct{ name, src string }{
		{"repeat_huge", `repeat("a", 1000000000) == ""`},
		{"repeat_float", `repeat("a", 1e9) == ""`},
		{"repeat_nested", `len(repeat(repeat("a", 1000), 1000)) > 0`},
		{"range_huge", `len(1..1000000000) > 0`},
		{"map_range", `len(map(1..1000000000, #)) > 0`},
		{"filter_range", `len(filter(1..1000000000, true)) > 0`},
		{"any_range", `any(1..1000000000, # < 0)`},
		{"count_range", `count(1..999999, # > 0) > 0 && count(1..999999, # > 0) > 0`},
		{"nested_ranges", `any(1..100000, any(1..100000, # < 0))`},
		{"nested_sensors", nest(`all(sensors, %s)`, `# != ""`, 12)},
		{"nested_ranges_deep", nest(`all(1..99, %s)`, `# > 0`, 6)},
		{"in_filter_in_loop", `all(1..999, # in filter(1..999, true))`},
		{"let_shared_range", `let x = 1..999; all(x, all(x, all(x, # > 0)))`},
		{"let_doubling", `let a = ` + long + `; let b = a + a; let c = b + b; len(c) > 0`},
		{"replace_chain", nest(`replace(%s, "a", `+long+`)`, long, 3) + ` != ""`},
		{"join_map", `len(join(map(1..1000, join(map(1..1000, "aaaa"), "")), "")) > 0`},
		{"reduce_doubling", `len(reduce(1..64, #acc + #acc, "a")) > 0`},
		{"tojson_nested", `len(` + nest(`toJSON(%s)`, long, 60) + `) > 0`},
		{"base64_nested", `len(` + nest(`toBase64(%s)`, long, 60) + `) > 0`},
		{"map_pointer_dag", `len(` + nest(`map(%s, [#, #])`, `[1]`, 60) + `) > 0`},
		{"regex_in_loop", `all(1..100000, attrs.note + attrs.note + attrs.note matches "^(n|m)*$")`},
		{"step_function", `$flmngr_step($env)`},
		{"too_long", strings.Repeat("1 + ", 2000) + "1 > 0"},
		{"too_many_nodes", strings.Repeat("1 + ", 600) + "1 > 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			start := time.Now()
			err := evaluate(tc.src)
			took := time.Since(start)
			runtime.ReadMemStats(&ms)
			allocated := ms.TotalAlloc - before
			if err == nil {
				t.Fatalf("%s was evaluated without an error", tc.src)
			}
			if took > 10*time.Second || allocated > 512<<20 {
				t.Fatalf("stopped after %v and %d MB: %v", took, allocated>>20, err)
			}
			t.Logf("%v, %d MB: %v", took.Round(time.Millisecond), allocated>>20, err)
		})
	}
}

// evaluate compiles src and matches it against a sample client; the error
// of either step must be a clear one.
func evaluate(src string) error {
	c, err := commands.CompileCriterion(src)
	if err != nil {
		if fault.KindOf(err) != fault.KindInvalid || fault.AsError(err).Field != "selection_criteria" {
			return fmt.Errorf("compile error of kind %s: %w", fault.KindOf(err), err)
		}
		return err
	}
	_, err = c.Match("alice", sampleAttributes())
	return err
}

// FuzzCriterion compiles and evaluates arbitrary criteria: nothing
// panics, a refusal is an invalid-input error on selection_criteria, and
// an evaluation ends (the guard bounds its loops and values).
func FuzzCriterion(f *testing.F) {
	for _, src := range []string{
		``, `true`, `"camera" in sensors`, `data_qnt > 50 && attrs.region == "eu"`,
		`avg_acc_contrib != nil && avg_acc_contrib > 0.5`, `any(sensors, # startsWith "li")`,
		`count(sensors, len(#) > 3) == 2`, `len(filter(sensors, # matches "^[a-z]+$")) == 4`,
		`attrs.cores in 1..16 && attrs.gpu`, `user_id matches attrs.note`, `attrs.missing.deeper == 1`,
		`sensors[99] == "x"`, `1 / 0 > 0`, `int("x") > 0`, `data_qnt > `, `aaaaa`, `"a" +`, `#`,
		`repeat("a", 1000000000) == ""`, `len(map(1..1000000000, #)) > 0`, `any(1..100000, any(1..100000, # < 0))`,
		`let x = 1..999; all(x, all(x, # > 0))`, `all(sensors, all(sensors, all(sensors, all(sensors, true))))`,
		`$env.sensors == sensors`, `$flmngr_step($env)`, `sum(sensors) == "cameraecu"`, "\x00", "\xff\xfe",
	} {
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := commands.CompileCriterion(src)
		if err != nil {
			e := fault.AsError(err)
			if e.Kind != fault.KindInvalid || e.Field != "selection_criteria" || e.Message == "" {
				t.Fatalf("compile %q: %#v", src, e)
			}
			return
		}
		for _, a := range []events.ClientAttributes{{}, sampleAttributes()} {
			if _, err := c.Match("alice", a); err != nil && err.Error() == "" {
				t.Fatalf("match %q: an empty error", src)
			}
		}
	})
}

func TestCriterionReads(t *testing.T) {
	attrs := events.ClientAttributes{Sensors: []string{"gps"}, DataQnt: 5, Extra: map[string]any{"region": "eu", "gpu": true}}
	for _, tc := range []struct {
		src  string
		want map[string]any
	}{
		{``, nil},
		{`true`, nil},
		{`"camera" in sensors && data_qnt > 100`, map[string]any{"sensors": []string{"gps"}, "data_qnt": int64(5)}},
		{`attrs.region == "us"`, map[string]any{"attrs.region": "eu"}},
		{`attrs["gpu"] && attrs.missing == nil`, map[string]any{"attrs.gpu": true, "attrs.missing": nil}},
		{`any(sensors, # == "camera") || user_id == "c9"`, map[string]any{"sensors": []string{"gps"}, "user_id": "c1"}},
		{`avg_acc_contrib != nil`, map[string]any{"avg_acc_contrib": (*float64)(nil)}},
	} {
		c, err := commands.CompileCriterion(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := c.Reads("c1", attrs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: reads %#v, want %#v", tc.src, got, tc.want)
		}
	}
}
