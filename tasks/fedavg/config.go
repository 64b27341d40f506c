package fedavg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// ConfigFile is the name the task's settings are uploaded under; both
// roles read it (--config).
const ConfigFile = "fedavg.json"

// NotifyTrigger is the trigger uploaded with the task (Files): the
// server fires it once the accuracy reaches TriggerAccuracy.
const NotifyTrigger = "notify"

// Config is the task's settings: what fedavg.json holds and what the
// roles' flags default to.
type Config struct {
	// Rounds of federated averaging.
	Rounds int `json:"rounds"`
	// MinClients is how many clients train in each round.
	MinClients int `json:"min_clients"`
	// Epochs, LR and BatchSize are the clients' local hyperparameters.
	Epochs    int     `json:"epochs"`
	LR        float64 `json:"lr"`
	BatchSize int     `json:"batch_size"`
	// WaitClients bounds the server's wait for MinClients.
	WaitClients Duration `json:"wait_clients"`
	// Trigger, when set, is fired once with the accuracy as its argument
	// when the accuracy reaches TriggerAccuracy.
	Trigger         string  `json:"trigger"`
	TriggerAccuracy float64 `json:"trigger_accuracy"`
	// Partitions is how many shares the training set is cut into; NonIID
	// makes them label-skewed.
	Partitions int  `json:"partitions"`
	NonIID     bool `json:"non_iid"`
}

// DefaultConfig is the task's settings when nothing else is said.
func DefaultConfig() Config {
	return Config{Rounds: 3, MinClients: 2, Epochs: 1, LR: 0.1, BatchSize: 32, WaitClients: Duration(2 * time.Minute),
		TriggerAccuracy: 0.9, Partitions: 2}
}

// Validate says what is wrong with the settings.
func (c Config) Validate() error {
	switch {
	case c.Rounds < 1 || c.MinClients < 1:
		return errors.New("rounds and min clients must be at least 1")
	case c.Epochs < 1 || c.BatchSize < 1 || c.LR <= 0:
		return errors.New("epochs, batch size and learning rate must be positive")
	case c.Partitions < 1:
		return errors.New("partitions must be at least 1")
	}
	return nil
}

// Decode reads settings over c: what the JSON leaves out stays as it is
// in c; an unknown field is an error.
func (c Config) Decode(r io.Reader) (Config, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	err := dec.Decode(&c)
	return c, err
}

// Read reads a settings file over c.
func (c Config) Read(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	if c, err = c.Decode(bytes.NewReader(b)); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// JSON is the settings as fedavg.json holds them.
func (c Config) JSON() []byte {
	b, _ := json.MarshalIndent(c, "", "  ") // plain data: cannot fail
	return append(b, '\n')
}

// Server is the server's configuration with these settings.
func (c Config) Server(listen string, out io.Writer) ServerConfig {
	return ServerConfig{Listen: listen, Rounds: c.Rounds, MinClients: c.MinClients, WaitClients: time.Duration(c.WaitClients),
		Train:   TrainConfig{Epochs: c.Epochs, LR: c.LR, BatchSize: c.BatchSize},
		Trigger: c.Trigger, TriggerAccuracy: c.TriggerAccuracy, Out: out}
}

// Duration is a time.Duration written as text in JSON ("2m").
type Duration time.Duration

// MarshalText writes the duration as time.Duration prints it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a duration as time.ParseDuration does.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}
