//go:build !linux

package taskd

import "errors"

// Elsewhere than Linux a memory limit has no fallback.
const rlimitFallback = false

func limitAddressSpace(int, int64) error { return errors.New("RLIMIT_AS: Linux only") }
