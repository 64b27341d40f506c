package fedavg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ClientConfig configures a FedAvg client.
type ClientConfig struct {
	// Server is the task's host:port.
	Server   string
	ClientID string
	// Partitions is how many shares the training set is cut into
	// (default: DefaultConfig); Partition is this client's (-1: derived
	// from the client id).
	Partitions int
	Partition  int
	NonIID     bool
	// ConnectTimeout bounds the wait for the server to listen (default
	// 60s): clients may start before their server.
	ConnectTimeout time.Duration
	// IdleTimeout bounds the wait for the server's next message (default
	// 10m).
	IdleTimeout time.Duration
	// Train is the training set (default: the MNIST training set).
	Train Dataset
	// FailAfterLoad, when set, makes the client fail with this message
	// once its data is loaded, as the original's "test-error" argument
	// did (experiment 2).
	FailAfterLoad string
	Out           io.Writer
}

func (c ClientConfig) withDefaults() ClientConfig {
	orDefault(&c.Partitions, DefaultConfig().Partitions)
	orDefault(&c.ConnectTimeout, time.Minute)
	orDefault(&c.IdleTimeout, 10*time.Minute)
	orDefault(&c.Out, io.Discard)
	return c
}

// RunClient trains until the server says the rounds are done; it reports
// "Finished", or an error line and the error.
func RunClient(ctx context.Context, cfg ClientConfig) error {
	cfg = cfg.withDefaults()
	rep := NewReporter(cfg.Out)
	if err := runClient(ctx, cfg, rep); err != nil {
		rep.Error(err)
		return err
	}
	rep.Info("Finished")
	return nil
}

func runClient(ctx context.Context, cfg ClientConfig, rep *Reporter) error {
	part := cfg.Partition
	if part < 0 {
		part = PartitionOf(cfg.ClientID, cfg.Partitions)
	}
	if part >= cfg.Partitions {
		return fmt.Errorf("partition %d of %d does not exist", part, cfg.Partitions)
	}
	var data Dataset
	if cfg.Train != nil {
		data = Partition(cfg.Train, part, cfg.Partitions, cfg.NonIID)
	} else {
		var err error
		if data, err = Train(part, cfg.Partitions, cfg.NonIID); err != nil {
			return err
		}
	}
	if cfg.FailAfterLoad != "" {
		return errors.New(cfg.FailAfterLoad)
	}
	rep.Print("client %s trains on partition %d of %d (%d examples, non-IID %v)", cfg.ClientID, part, cfg.Partitions, len(data), cfg.NonIID)
	nc, err := dial(ctx, cfg.Server, cfg.ConnectTimeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	c := newConn(nc)
	if err := c.send(hello{ClientID: cfg.ClientID, Examples: len(data)}, 10*time.Second); err != nil {
		return fmt.Errorf("say hello to %s: %w", cfg.Server, err)
	}
	for {
		var m serverMsg
		if err := c.recv(&m, cfg.IdleTimeout); err != nil {
			if errors.Is(err, io.EOF) {
				return errors.New("the server closed the connection before the rounds were done")
			}
			return fmt.Errorf("wait for the server: %w", err)
		}
		switch m.Kind {
		case msgReject:
			return fmt.Errorf("the server refused this client: %s", m.Reason)
		case msgDone:
			rep.Print("rounds done; final accuracy %.4f", m.Accuracy)
			return nil
		case msgRound:
			model := append(Model(nil), m.Model...)
			loss, acc := model.Train(data, m.Train)
			rep.Print("round %d: trained on %d examples, loss %.4f, accuracy %.4f", m.Round, len(data), loss, acc)
			if err := c.send(update{Round: m.Round, Model: model, Examples: len(data), Loss: loss, Accuracy: acc}, 30*time.Second); err != nil {
				return fmt.Errorf("send round %d: %w", m.Round, err)
			}
		default:
			return fmt.Errorf("unknown message %q from the server", m.Kind)
		}
	}
}

// dial retries until the server listens or the timeout passes.
func dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("cannot reach the server at %s within %s: %v", addr, timeout, err)
		case <-tick.C:
		}
	}
}
