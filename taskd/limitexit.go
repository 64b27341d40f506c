package taskd

import (
	"context"
	"fmt"
	"strings"
)

// wallTimeUp stops a process that ran past its walltime limit, unless it
// already exited or was being stopped.
func (p *Process) wallTimeUp() {
	p.mu.Lock()
	select {
	case <-p.stopped:
		p.mu.Unlock()
		return
	default:
	}
	if p.exited {
		p.mu.Unlock()
		return
	}
	p.limit = fmt.Sprintf("walltime limit %s exceeded", formatDuration(p.cfg.Limits.WallTime))
	p.mu.Unlock()
	_, _ = p.terminate(context.Background())
}

// exitLimit names the limit that ended the process, if one did; p.mu is
// held. The walltime limit ended it if its timer stopped it. The others
// leave only traces: the cgroup's events (cgLimit), or, under RLIMIT_AS,
// the words of a failed allocation in what the process last said. They
// count when the process did not end cleanly (clean: exit code 0 and no
// error reported) and no Stop came before it ended.
func (p *Process) exitLimit(clean, stoppedFirst bool, cgLimit string) string {
	switch {
	case p.limit != "":
		return p.limit
	case stoppedFirst || clean && !p.errored:
		return ""
	}
	if cgLimit != "" {
		return cgLimit
	}
	if p.rlimitAS && allocationFailed(p.errText, p.lastLogs) {
		return fmt.Sprintf("memory limit %s exceeded (address space)", formatBytes(p.cfg.Limits.Memory))
	}
	return ""
}

// allocationWords are what programs say when an allocation fails:
// strerror(ENOMEM), glibc's and Go's runtime, coreutils' xalloc_die,
// Python's MemoryError, C++'s std::bad_alloc.
var allocationWords = []string{"cannot allocate memory", "out of memory", "memory exhausted", "memoryerror", "bad_alloc", "failed to allocate"}

// allocationFailed reports whether the exception or one of the last log
// lines tells of a failed allocation (not of a GPU's memory, which
// RLIMIT_AS does not bound).
func allocationFailed(exception string, lines []string) bool {
	for _, s := range append([]string{exception}, lines...) {
		s = strings.ToLower(s)
		if strings.Contains(s, "cuda") || strings.Contains(s, "gpu") {
			continue
		}
		for _, w := range allocationWords {
			if strings.Contains(s, w) {
				return true
			}
		}
	}
	return false
}
