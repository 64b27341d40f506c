package taskd

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limits bound what a task process, and everything it starts, may use.
// A zero field means no limit. How each is enforced depends on the host
// (see Isolation and the package documentation).
type Limits struct {
	// CPU is in cores: 0.5 is half of one, 2 is two.
	CPU float64
	// Memory is in bytes.
	Memory int64
	// PIDs bounds the processes and threads alive at once.
	PIDs int
	// WallTime bounds the time from start; then the process is stopped.
	WallTime time.Duration
}

// MinCPU is the smallest CPU limit: cgroup v2 takes no quota below 1 ms
// in a period of 100 ms.
const MinCPU = 0.01

// IsZero reports whether l limits nothing.
func (l Limits) IsZero() bool { return l == Limits{} }

// Validate reports whether every field is a limit or zero.
func (l Limits) Validate() error {
	var errs []error
	switch {
	case math.IsNaN(l.CPU) || math.IsInf(l.CPU, 0) || l.CPU < 0:
		errs = append(errs, fmt.Errorf("cpu limit %v is not a number of cores", l.CPU))
	case l.CPU > 0 && l.CPU < MinCPU:
		errs = append(errs, fmt.Errorf("cpu limit %v is below the smallest, %v", l.CPU, MinCPU))
	}
	if l.Memory < 0 {
		errs = append(errs, fmt.Errorf("negative memory limit %d", l.Memory))
	}
	if l.PIDs < 0 {
		errs = append(errs, fmt.Errorf("negative pids limit %d", l.PIDs))
	}
	if l.WallTime < 0 {
		errs = append(errs, fmt.Errorf("negative walltime limit %s", l.WallTime))
	}
	return errors.Join(errs...)
}

// Min caps l by ceiling, field by field: an agent's ceiling bounds what a
// task asks. A zero field is no limit, so it gives way to the other.
func (l Limits) Min(ceiling Limits) Limits {
	return Limits{
		CPU:      minLimit(l.CPU, ceiling.CPU),
		Memory:   minLimit(l.Memory, ceiling.Memory),
		PIDs:     minLimit(l.PIDs, ceiling.PIDs),
		WallTime: minLimit(l.WallTime, ceiling.WallTime),
	}
}

func minLimit[T cmp.Ordered](a, b T) T {
	var zero T
	switch {
	case a == zero:
		return b
	case b == zero:
		return a
	}
	return min(a, b)
}

// String is the canonical form of l, which ParseLimits reads back:
// "cpu=2,memory=2GiB,pids=256,walltime=2h", the limits set, in this order.
func (l Limits) String() string {
	var parts []string
	if l.CPU != 0 {
		parts = append(parts, "cpu="+strconv.FormatFloat(l.CPU, 'f', -1, 64))
	}
	if l.Memory != 0 {
		parts = append(parts, "memory="+formatBytes(l.Memory))
	}
	if l.PIDs != 0 {
		parts = append(parts, "pids="+strconv.Itoa(l.PIDs))
	}
	if l.WallTime != 0 {
		parts = append(parts, "walltime="+formatDuration(l.WallTime))
	}
	return strings.Join(parts, ",")
}

// ParseLimits reads limits written as comma-separated key=value items:
//
//	cpu=2,memory=2GiB,pids=256,walltime=2h
//
// cpu is a number of cores (at least MinCPU); memory a size in bytes with
// an optional unit, K, M, G, T (also KB...TB) in powers of 1000 or Ki, Mi,
// Gi, Ti (also KiB...TiB) in powers of 1024, in any case; pids a count;
// walltime a Go duration ("90m", "1h30m") optionally led by whole days
// ("2d", "1d12h"). Every value is positive: a limit left out is no limit.
// The empty string limits nothing.
func ParseLimits(s string) (Limits, error) {
	var l Limits
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		key, value, ok := strings.Cut(item, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch {
		case item == "":
			return Limits{}, fmt.Errorf("limits %q: empty item", s)
		case !ok:
			return Limits{}, fmt.Errorf("limits: %q is not key=value", item)
		case seen[key]:
			return Limits{}, fmt.Errorf("limits: %s given twice", key)
		case value == "":
			return Limits{}, fmt.Errorf("limits: %s has no value", key)
		}
		seen[key] = true
		var err error
		switch key {
		case "cpu":
			l.CPU, err = parseCPU(value)
		case "memory":
			l.Memory, err = parseBytes(value)
		case "pids":
			l.PIDs, err = parseCount(value)
		case "walltime":
			l.WallTime, err = parseDuration(value)
		default:
			return Limits{}, fmt.Errorf("limits: unknown limit %q (known: cpu, memory, pids, walltime)", key)
		}
		if err != nil {
			return Limits{}, fmt.Errorf("limits: %s=%s: %w", key, value, err)
		}
	}
	return l, nil
}

var errNotPositive = errors.New("must be above zero (leave a limit out for none)")

func parseCPU(s string) (float64, error) {
	c, err := strconv.ParseFloat(s, 64)
	switch {
	case err != nil || math.IsNaN(c) || math.IsInf(c, 0):
		return 0, errors.New("not a number of cores")
	case c <= 0:
		return 0, errNotPositive
	case c < MinCPU:
		return 0, fmt.Errorf("below the smallest cpu limit, %v", MinCPU)
	}
	return c, nil
}

func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	switch {
	case err != nil:
		return 0, errors.New("not a whole number")
	case n <= 0:
		return 0, errNotPositive
	}
	return n, nil
}

// byteUnits are the units of a size, by their lower-case name.
var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1e6, "mb": 1e6, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1e9, "gb": 1e9, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1e12, "tb": 1e12, "ti": 1 << 40, "tib": 1 << 40,
}

func parseBytes(s string) (int64, error) {
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if num == "" {
		return 0, errors.New("not a size")
	}
	mult, ok := byteUnits[strings.ToLower(unit)]
	if !ok {
		return 0, fmt.Errorf("unknown unit %q (use B, K, M, G, T, KiB, MiB, GiB, TiB)", unit)
	}
	var n int64
	if !strings.Contains(num, ".") {
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return 0, errors.New("too large")
			}
			return 0, errors.New("not a size")
		}
		if v > math.MaxInt64/mult {
			return 0, errors.New("too large")
		}
		n = v * mult
	} else {
		v, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return 0, errors.New("not a size")
		}
		f := math.Round(v * float64(mult))
		if f >= math.MaxInt64 {
			return 0, errors.New("too large")
		}
		n = int64(f)
	}
	if n <= 0 {
		return 0, errNotPositive
	}
	return n, nil
}

// formatBytes writes n with the largest unit that divides it, else in
// plain bytes.
func formatBytes(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"T", 1e12}, {"GiB", 1 << 30}, {"G", 1e9}, {"MiB", 1 << 20}, {"M", 1e6}, {"KiB", 1 << 10}, {"K", 1e3}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

func parseDuration(s string) (time.Duration, error) {
	var days int64
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 {
			return 0, errors.New("days must be a whole number before d, as in 2d or 1d12h")
		}
		if n > math.MaxInt64/int64(24*time.Hour) {
			return 0, errors.New("too long")
		}
		days, s = n, s[i+1:]
	}
	var d time.Duration
	if s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errors.New("not a duration (as in 90s, 30m, 2h or 1d12h)")
		}
	}
	if d < 0 {
		return 0, errNotPositive
	}
	total := time.Duration(days) * 24 * time.Hour
	if d > math.MaxInt64-total {
		return 0, errors.New("too long")
	}
	if total += d; total <= 0 {
		return 0, errNotPositive
	}
	return total, nil
}

// formatDuration is d without the trailing zero units of
// time.Duration.String: "2h", "1h30m", "90ms".
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// ParseBytes reads a size such as 512MiB, 2G or 1048576.
func ParseBytes(s string) (int64, error) { return parseBytes(s) }

// FormatBytes prints a size as ParseBytes reads it.
func FormatBytes(n int64) string { return formatBytes(n) }
