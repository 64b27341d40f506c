package fedavg

import (
	"strings"
	"testing"
	"time"
)

func TestConfigDecodeKeepsWhatTheFileLeavesOut(t *testing.T) {
	c, err := DefaultConfig().Decode(strings.NewReader(`{"rounds": 5, "wait_clients": "30s", "trigger": "notify"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Rounds, want.WaitClients, want.Trigger = 5, Duration(30*time.Second), "notify"
	if c != want {
		t.Fatalf("decoded %+v, want %+v", c, want)
	}
}

func TestConfigDecodeRefusesUnknownFieldsAndBadDurations(t *testing.T) {
	for name, in := range map[string]string{
		"unknown_field": `{"roundz": 5}`,
		"bad_duration":  `{"wait_clients": "soon"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DefaultConfig().Decode(strings.NewReader(in)); err == nil {
				t.Fatalf("%s decoded without an error", in)
			}
		})
	}
}

func TestConfigJSONRoundTrips(t *testing.T) {
	c := DefaultConfig()
	c.Rounds, c.NonIID, c.Trigger = 7, true, NotifyTrigger
	back, err := Config{}.Decode(strings.NewReader(string(c.JSON())))
	if err != nil {
		t.Fatal(err)
	}
	if back != c {
		t.Fatalf("round trip gave %+v, want %+v", back, c)
	}
}

func TestServerDefaultsAreTheConfigDefaults(t *testing.T) {
	d := DefaultConfig()
	s := ServerConfig{}.withDefaults()
	if s.Rounds != d.Rounds || s.MinClients != d.MinClients || s.WaitClients != time.Duration(d.WaitClients) ||
		s.Train.Epochs != d.Epochs || s.Train.LR != d.LR || s.Train.BatchSize != d.BatchSize {
		t.Fatalf("server defaults %+v differ from %+v", s, d)
	}
	if c := (ClientConfig{}).withDefaults(); c.Partitions != d.Partitions {
		t.Fatalf("client partitions default %d, want %d", c.Partitions, d.Partitions)
	}
	if err := d.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
}
