package taskd

import (
	"fmt"
	"slices"
	"strings"
	"sync"
)

// IsolationInfo tells how task processes are isolated on this host. It is
// found once, at the first Start or call of Isolation.
type IsolationInfo struct {
	// Cgroups reports whether every task process gets a cgroup v2 of its
	// own, so that a stop ends everything it started, even what left its
	// process group (setsid). Otherwise task processes run in process
	// groups only, and Reason says why in one line.
	Cgroups bool
	Reason  string
	// Mount is where the cgroup v2 hierarchy is mounted, Own the cgroup of
	// this process in it ("/" is the root), when they were found.
	Mount, Own string
	// Base is the directory task cgroups are made in: <Mount><Own>/flmngr.
	// It holds no process itself, so that it may hand controllers down.
	Base string
	// Offered lists the controllers the hierarchy gives this process's
	// cgroup (its cgroup.controllers).
	Offered []string
	// Controllers lists the limit controllers (cpu, memory, pids) enabled
	// for task cgroups; Note says why any of them is missing.
	Controllers []string
	Note        string
	// KillFile reports whether cgroups have cgroup.kill (Linux 5.14);
	// without it a cgroup is killed process by process.
	KillFile bool
}

var isolation = sync.OnceValue(detectIsolation)

// Isolation finds, once, how this host can isolate task processes: a
// cgroup v2 hierarchy with a subtree this process may make cgroups in,
// and which controllers it has for limits. A supervisor says once at its
// start what it found, e.g. when i.Cgroups is false:
//
//	"task processes run in process groups only: " + i.Reason
func Isolation() IsolationInfo {
	i := isolation()
	i.Offered, i.Controllers = slices.Clone(i.Offered), slices.Clone(i.Controllers)
	return i
}

// Has reports whether task cgroups have the controller.
func (i IsolationInfo) Has(controller string) bool {
	return slices.Contains(i.Controllers, controller)
}

// String describes the isolation in one line.
func (i IsolationInfo) String() string {
	var b strings.Builder
	if !i.Cgroups {
		fmt.Fprintf(&b, "process groups only: %s", i.Reason)
	} else {
		kill := "cgroup.kill"
		if !i.KillFile {
			kill = "SIGKILL to each of cgroup.procs"
		}
		fmt.Fprintf(&b, "a cgroup per task under %s (killed by %s); limit controllers: ", i.Base, kill)
		if len(i.Controllers) == 0 {
			b.WriteString("none")
		} else {
			b.WriteString(strings.Join(i.Controllers, ", "))
		}
		if i.Note != "" {
			fmt.Fprintf(&b, " (%s)", i.Note)
		}
	}
	fmt.Fprintf(&b, "; limits: %s", i.enforcement(Limits{CPU: 1, Memory: 1, PIDs: 1, WallTime: 1}, false))
	return b.String()
}

// enforcement says how each limit set in l is enforced with this
// isolation: "memory by RLIMIT_AS, cpu not enforced (...)". With values,
// each limit is written key=value.
func (i IsolationInfo) enforcement(l Limits, values bool) string {
	var parts []string
	add := func(key, value, how string) {
		if values {
			key += "=" + value
		}
		parts = append(parts, key+" "+how)
	}
	// byCgroup adds a limit the controller enforces when there is one.
	byCgroup := func(controller, value, without string) {
		if i.Has(controller) {
			add(controller, value, "by cgroup "+controller+".max")
		} else {
			add(controller, value, without)
		}
	}
	if l.CPU > 0 {
		byCgroup("cpu", fmt.Sprint(l.CPU), "not enforced (no cpu controller; RLIMIT_CPU counts seconds, not cores)")
	}
	if l.Memory > 0 {
		without := "not enforced (no memory controller)"
		if rlimitFallback {
			without = "by RLIMIT_AS (address space, set just after the start)"
		}
		byCgroup("memory", formatBytes(l.Memory), without)
	}
	if l.PIDs > 0 {
		byCgroup("pids", fmt.Sprint(l.PIDs), "not enforced (no pids controller; RLIMIT_NPROC counts the whole user)")
	}
	if l.WallTime > 0 {
		add("walltime", formatDuration(l.WallTime), "by a timer")
	}
	return strings.Join(parts, ", ")
}
