package agent

import (
	"strings"
	"testing"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/taskd"
)

// A task's client process runs under the task's limits capped by the
// site's ceiling, field by field; limits the agent cannot read are an
// error, never no limits.
func TestEffectiveLimitsAreCappedByTheCeiling(t *testing.T) {
	ceiling := taskd.Limits{Memory: 1 << 30, WallTime: time.Hour}
	a := &Agent{cfg: Config{MaxLimits: ceiling}}
	for _, tc := range []struct {
		name, task string
		want       taskd.Limits
	}{
		{"none_gets_the_ceiling", "", ceiling},
		{"lower_kept", "memory=64MiB,walltime=1m", taskd.Limits{Memory: 64 << 20, WallTime: time.Minute}},
		{"higher_capped", "memory=4GiB,walltime=2d", ceiling},
		{"other_limits_kept", "cpu=2,pids=50", taskd.Limits{CPU: 2, PIDs: 50, Memory: 1 << 30, WallTime: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := a.limits(events.Offer{TaskID: "T", Limits: tc.task})
			if err != nil || got != tc.want {
				t.Fatalf("got %v %v, want %v", got, err, tc.want)
			}
		})
	}
	if got, err := (&Agent{}).limits(events.Offer{TaskID: "T", Limits: "cpu=2"}); err != nil || got != (taskd.Limits{CPU: 2}) {
		t.Fatalf("without a ceiling: %v %v", got, err)
	}
	if _, err := a.limits(events.Offer{TaskID: "T", Limits: "gpu=1"}); err == nil || !strings.Contains(err.Error(), `unknown limit "gpu"`) {
		t.Fatalf("unreadable limits: %v", err)
	}
	if err := (Config{ClientID: "c", WorkDir: "w", MaxLimits: taskd.Limits{Memory: -1}}).Validate(); err == nil {
		t.Fatal("a negative ceiling was taken")
	}
}
