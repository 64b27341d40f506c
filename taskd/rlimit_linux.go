//go:build linux

package taskd

import (
	"fmt"
	"syscall"
	"unsafe"
)

// rlimitFallback tells whether a memory limit without a memory controller
// is enforced by RLIMIT_AS.
const rlimitFallback = true

// limitAddressSpace sets the RLIMIT_AS of process pid, soft and hard, to
// bytes (or to its hard limit, if that is lower). Go's exec has no hook
// between fork and exec: this is prlimit(2) on the child once it runs,
// so the first instants of the program (before Start returns) are not
// limited.
func limitAddressSpace(pid int, bytes int64) error {
	var old syscall.Rlimit
	if err := prlimit(pid, syscall.RLIMIT_AS, nil, &old); err != nil {
		return fmt.Errorf("prlimit RLIMIT_AS: %w", err)
	}
	lim := syscall.Rlimit{Cur: min(uint64(bytes), old.Max), Max: min(uint64(bytes), old.Max)}
	if err := prlimit(pid, syscall.RLIMIT_AS, &lim, nil); err != nil {
		return fmt.Errorf("prlimit RLIMIT_AS: %w", err)
	}
	return nil
}

func prlimit(pid, resource int, set, get *syscall.Rlimit) error {
	_, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(resource), uintptr(unsafe.Pointer(set)), uintptr(unsafe.Pointer(get)), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
