// Package taskd supervises one task process, the way nomad's task runner
// does: it starts the child with its argv, working directory and
// environment in a process group of its own; reads stdout and stderr on
// separate goroutines with a bounded line size; parses the report protocol
// (JSON lines of type info, print, error, model and trigger) and hands
// every other line on as a log line; stops the child with a signal, a grace
// period and then SIGKILL to the whole group, with a bounded wait; and
// reports the exit (code, signal, duration, outcome) exactly once.
//
// A process that exits without reporting "Finished" or an error is a
// failure: its outcome is Unreported.
//
// # Isolation
//
// A process group does not hold what leaves it: a grandchild that calls
// setsid outlives its task. Where the host allows, each task process
// therefore also runs in a cgroup v2 of its own. Isolation finds out once,
// at run time: the cgroup2 mount (/sys/fs/cgroup, or /sys/fs/cgroup/unified
// on hybrid hosts), this process's cgroup (the 0:: line of
// /proc/self/cgroup), whether it may make cgroups below it, and whether a
// child can be cloned into one (clone3 with CLONE_INTO_CGROUP, Linux 5.7).
// Task cgroups are made in <own cgroup>/flmngr, named after Config.Name
// (by default the pid file's name) with this process's pid and a random
// suffix. The child is cloned straight into its cgroup, so nothing it
// runs is ever outside. When it is stopped, and when it exits by itself,
// its group is killed and so is its cgroup (cgroup.kill, Linux 5.14; else
// SIGKILL to every process in cgroup.procs until none is left), and the
// cgroup is removed. Process.Cgroup names it; "" means the process group
// only. Where cgroups are not to be had, Isolation says why in one line,
// and task processes run in process groups only, as before.
//
// A pid file records the cgroup too, so that KillStale ends what a
// supervisor killed with SIGKILL left in it. Without a pid file, what left
// the group of a task whose supervisor died survives, in its cgroup.
//
// # Limits
//
// Config.Limits bounds cpu (cores), memory (bytes), pids and walltime; a
// zero field is no limit, ParseLimits reads "cpu=2,memory=2GiB,pids=256,
// walltime=2h", and Limits.Min caps a task's limits by a ceiling. How
// each is enforced depends on the controllers task cgroups get
// (IsolationInfo.Controllers; Process.Enforcement says it per process):
//
//   - cpu: cpu.max (quota and period of 100 ms). Without the cpu
//     controller it is not enforced: RLIMIT_CPU bounds CPU seconds, not
//     cores.
//   - memory: memory.max, with memory.swap.max 0 and memory.oom.group 1
//     (an OOM kill ends the task whole). Without the memory controller,
//     RLIMIT_AS, the address space, set with prlimit(2) just after the
//     start: Go's exec has no hook between fork and exec, so the first
//     instants of the program are not limited. The address space is not
//     memory use: programs that reserve much more than they use (CUDA, a
//     JVM) may fail under it.
//   - pids: pids.max; a fork past it fails. Without the pids controller it
//     is not enforced: RLIMIT_NPROC counts all processes of the user.
//   - walltime: a timer in taskd stops the process as Stop does.
//
// cgroup v2 hands no controller down from a cgroup that holds processes,
// but the root ("no internal processes"), and taskd does not move itself
// out of its cgroup. Limit controllers therefore reach task cgroups
// (through <own>/flmngr, which holds none) only when this process runs in
// the root cgroup of the hierarchy and the controllers are bound to
// cgroup v2 there. What could not be enabled, and why, is in
// IsolationInfo.Note; the rest of isolation works all the same.
//
// Limits guard against a task's accidents, not its malice: a task that
// runs as this process's user may write its own cgroup's files
// (memory.max among them). The hard RLIMIT_AS it cannot raise, without
// CAP_SYS_RESOURCE.
//
// When a limit ends a process, Exit.Limit says which ("memory limit 2GiB
// exceeded", "pids limit 256 reached", "walltime limit 2h exceeded"), and
// the outcome is Errored with that as Exception: never Unreported. What can
// be known differs. The walltime timer knows it stopped the process. The
// cgroup's memory.events (an oom_kill while the cgroup's own limit was
// reached) and pids.events (a fork refused at pids.max) tell of the other
// limits, which count when the process did not end cleanly (exit code 0,
// no error reported) and no Stop came before it ended. Under RLIMIT_AS nothing tells:
// an allocation fails with ENOMEM, and the program decides what follows.
// The limit is then inferred from the words of a failed allocation
// ("Cannot allocate memory", "out of memory", "memory exhausted",
// MemoryError, std::bad_alloc; not a GPU's) in the error the process
// reported or its last log lines: "memory limit 2GiB exceeded (address
// space)". A program that dies of it without a word is Unreported.
package taskd
