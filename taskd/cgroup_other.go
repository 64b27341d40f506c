//go:build !linux

package taskd

import (
	"errors"
	"syscall"
	"time"
)

// Elsewhere than Linux there are no cgroups and no Pdeathsig: task
// processes run in process groups only.

func detectIsolation() IsolationInfo {
	return IsolationInfo{Reason: "cgroups are Linux only"}
}

type cgroup struct{ memory bool }

func newCgroup(IsolationInfo, string, Limits) (*cgroup, error) {
	return nil, errors.New("cgroups are Linux only")
}

func openCgroup(string) (*cgroup, error) { return nil, nil }

func sweepCgroups() {}

func (*cgroup) procs() []int               { return nil }
func (*cgroup) path() string               { return "" }
func (*cgroup) started()                   {}
func (*cgroup) kill()                      {}
func (*cgroup) remove(time.Duration) error { return nil }
func (*cgroup) limitHit(Limits) string     { return "" }

func procAttr(*cgroup) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
