//go:build !linux

package flowerapp

import "syscall"

// ownGroup starts a Flower process in its own process group, so the
// driver decides when it stops, after `flwr stop`.
func ownGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
