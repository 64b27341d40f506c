package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flmngr/flmngr/tasks/fedavg"
)

// The settings file sets what the command line does not; the flags
// given win; what neither says keeps its default.
func TestFLConfigFileUnderFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), fedavg.ConfigFile)
	if err := os.WriteFile(path, []byte(`{"rounds": 7, "lr": 0.5, "wait_clients": "30s", "partitions": 4}`), 0o644); err != nil {
		t.Fatal(err)
	}
	fs := newFlags("fl test", "fl test", "")
	cfg := fedavg.DefaultConfig()
	fs.IntVar(&cfg.Rounds, "rounds", cfg.Rounds, "")
	fs.Float64Var(&cfg.LR, "lr", cfg.LR, "")
	fs.DurationVar((*time.Duration)(&cfg.WaitClients), "wait", time.Duration(cfg.WaitClients), "")
	if _, err := parse(fs, []string{"--lr", "0.25"}); err != nil {
		t.Fatal(err)
	}
	if err := applyConfig(fs, path, &cfg); err != nil {
		t.Fatal(err)
	}
	want := fedavg.DefaultConfig()
	want.Rounds, want.LR, want.WaitClients, want.Partitions = 7, 0.25, fedavg.Duration(30*time.Second), 4
	if cfg != want {
		t.Fatalf("settings %+v, want %+v", cfg, want)
	}
	if err := applyConfig(fs, filepath.Join(t.TempDir(), "missing.json"), &cfg); err == nil {
		t.Fatal("a missing settings file is no error")
	}
}
