package storage

import (
	"errors"
	"testing"

	"github.com/flmngr/flmngr/commands/fault"
)

func TestGuardRefusesBelowWatermarkAndRecovers(t *testing.T) {
	dir := t.TempDir()
	free, err := Free(dir)
	if err != nil {
		t.Fatal(err)
	}
	var alarms []bool
	g := New(dir, free*4+1<<40, nil, func(low bool) { alarms = append(alarms, low) })
	if err := g.Admit(); err != nil {
		t.Fatalf("before the first check the guard refused: %v", err)
	}
	if _, err := g.Check(); err != nil {
		t.Fatal(err)
	}
	err = g.Admit()
	var ce *fault.Error
	if !errors.As(err, &ce) || ce.Kind != fault.KindInsufficientStorage {
		t.Fatalf("below the watermark Admit = %v, want insufficient_storage", err)
	}
	if !g.Low() || len(alarms) != 1 || !alarms[0] {
		t.Fatalf("low=%v alarms=%v, want one raised alarm", g.Low(), alarms)
	}
	g.Check() // still low: no second alarm
	if len(alarms) != 1 {
		t.Fatalf("alarm raised twice: %v", alarms)
	}
	g.min = 0
	g.Check()
	if err := g.Admit(); err != nil || g.Low() {
		t.Fatalf("with room again Admit = %v low=%v", err, g.Low())
	}
	if len(alarms) != 2 || alarms[1] {
		t.Fatalf("alarms = %v, want raised then cleared", alarms)
	}
	var nilGuard *Guard
	if err := nilGuard.Admit(); err != nil {
		t.Fatalf("a nil guard (no watermark) refused: %v", err)
	}
}

func TestBytes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 B", 1023: "1023 B", 2048: "2 KiB", 5 << 20: "5 MiB", 3 << 30: "3.0 GiB"} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
