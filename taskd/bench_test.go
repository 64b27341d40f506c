package taskd_test

import (
	"testing"

	"github.com/flmngr/flmngr/taskd"
)

// BenchmarkStartToExit is the cost of a task process that does nothing:
// start, exit, and, with cgroups, making, killing and removing its cgroup.
func BenchmarkStartToExit(b *testing.B) {
	b.Logf("isolation: %s", taskd.Isolation())
	for b.Loop() {
		p, err := taskd.Start(taskd.Config{Argv: []string{"true"}})
		if err != nil {
			b.Fatal(err)
		}
		<-p.Done()
	}
}
