package fedavg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// ServerConfig configures the FedAvg server.
type ServerConfig struct {
	// Listen is the task's host:port.
	Listen string
	// Rounds of federated averaging, MinClients how many clients train
	// in each round and WaitClients bounds the wait for them (defaults:
	// DefaultConfig).
	Rounds      int
	MinClients  int
	WaitClients time.Duration
	// RoundTimeout bounds each client's local training (default 5m).
	RoundTimeout time.Duration
	// Train are the clients' local hyperparameters (defaults:
	// DefaultConfig).
	Train TrainConfig
	// Trigger, when set, is fired once with the accuracy as its argument
	// when the accuracy reaches TriggerAccuracy.
	Trigger         string
	TriggerAccuracy float64
	// Test is the evaluation set (default: the MNIST test set).
	Test Dataset
	// Out receives report lines (default: nowhere).
	Out io.Writer
}

func (c ServerConfig) withDefaults() ServerConfig {
	d := DefaultConfig().Server(c.Listen, io.Discard)
	orDefault(&c.Rounds, d.Rounds)
	orDefault(&c.MinClients, d.MinClients)
	orDefault(&c.WaitClients, d.WaitClients)
	orDefault(&c.RoundTimeout, 5*time.Minute)
	orDefault(&c.Train.Epochs, d.Train.Epochs)
	orDefault(&c.Train.LR, d.Train.LR)
	orDefault(&c.Train.BatchSize, d.Train.BatchSize)
	orDefault(&c.Out, d.Out)
	return c
}

// orDefault sets a zero setting to its default.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// RunServer runs the server until its rounds are done; it reports
// "Finished", or an error line and the error.
func RunServer(ctx context.Context, cfg ServerConfig) error {
	cfg = cfg.withDefaults()
	rep := NewReporter(cfg.Out)
	acc, err := runServer(ctx, cfg, rep)
	if err != nil {
		rep.Error(err)
		return err
	}
	rep.Print("federated averaging done: %d rounds, accuracy %.4f", cfg.Rounds, acc)
	rep.Info("Finished")
	return nil
}

type peer struct {
	id       string
	examples int
	c        *conn
}

func runServer(ctx context.Context, cfg ServerConfig, rep *Reporter) (float64, error) {
	if cfg.MinClients < 1 || cfg.Rounds < 1 {
		return 0, errors.New("rounds and min clients must be at least 1")
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return 0, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	rep.Print("listening on %s for %d clients", ln.Addr(), cfg.MinClients)
	test := cfg.Test
	if test == nil {
		if test, err = Test(); err != nil {
			return 0, err
		}
	}
	peers, err := gather(ctx, ln, cfg, rep)
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, p := range peers {
			p.c.c.Close()
		}
	}()
	model := NewModel()
	var accuracy float64
	triggered := false
	for round := 1; round <= cfg.Rounds; round++ {
		models, examples, trainLoss, err := runRound(peers, round, model, cfg)
		if err != nil {
			return 0, err
		}
		model = Average(models, examples)
		loss, acc := model.Evaluate(test)
		accuracy = acc
		rep.Round(round, map[string]float64{"accuracy": acc, "loss": loss, "train_loss": trainLoss})
		rep.Print("round %d/%d: accuracy %.4f, loss %.4f", round, cfg.Rounds, acc, loss)
		if cfg.Trigger != "" && !triggered && acc >= cfg.TriggerAccuracy {
			triggered = true
			rep.Trigger(cfg.Trigger, strconv.FormatFloat(acc, 'f', 4, 64))
		}
	}
	for _, p := range peers {
		_ = p.c.send(serverMsg{Kind: msgDone, Accuracy: accuracy}, 10*time.Second)
	}
	return accuracy, nil
}

// gather accepts clients until MinClients said hello, or fails when they
// do not come in time. Clients that come later are told the rounds have
// started.
func gather(ctx context.Context, ln net.Listener, cfg ServerConfig, rep *Reporter) ([]peer, error) {
	var mu sync.Mutex
	var peers []peer
	started := false
	enough := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				pc := newConn(c)
				var h hello
				if err := pc.recv(&h, 10*time.Second); err != nil {
					c.Close()
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if started {
					_ = pc.send(serverMsg{Kind: msgReject, Reason: "the rounds have already started or ended"}, 5*time.Second)
					c.Close()
					return
				}
				peers = append(peers, peer{id: h.ClientID, examples: h.Examples, c: pc})
				rep.Print("client %s joined with %d examples (%d of %d)", h.ClientID, h.Examples, len(peers), cfg.MinClients)
				if len(peers) == cfg.MinClients {
					started = true
					close(enough)
				}
			}()
		}
	}()
	timer := time.NewTimer(cfg.WaitClients)
	defer timer.Stop()
	select {
	case <-enough:
		mu.Lock()
		defer mu.Unlock()
		return peers, nil
	case <-timer.C:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	started = true
	for _, p := range peers {
		_ = p.c.send(serverMsg{Kind: msgReject, Reason: "not enough clients"}, 5*time.Second)
		p.c.c.Close()
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("only %d of %d clients connected within %s", len(peers), cfg.MinClients, cfg.WaitClients)
}

// runRound sends the global model to every client and collects their
// locally trained models.
func runRound(peers []peer, round int, model Model, cfg ServerConfig) ([]Model, []int, float64, error) {
	models := make([]Model, len(peers))
	examples := make([]int, len(peers))
	losses := make([]float64, len(peers))
	errs := make([]error, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Go(func() {
			train := cfg.Train
			train.Seed = uint64(round*1000 + i)
			if err := p.c.send(serverMsg{Kind: msgRound, Round: round, Model: model, Train: train}, 30*time.Second); err != nil {
				errs[i] = fmt.Errorf("client %s: send round %d: %w", p.id, round, err)
				return
			}
			var u update
			if err := p.c.recv(&u, cfg.RoundTimeout); err != nil {
				errs[i] = fmt.Errorf("client %s did not return round %d: %w", p.id, round, err)
				return
			}
			if u.Round != round || len(u.Model) != Size {
				errs[i] = fmt.Errorf("client %s returned a bad update for round %d", p.id, round)
				return
			}
			models[i], examples[i], losses[i] = u.Model, u.Examples, u.Loss
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, nil, 0, err
	}
	total, loss := 0, 0.0
	for i := range peers {
		total += examples[i]
		loss += losses[i] * float64(examples[i])
	}
	return models, examples, loss / float64(max(total, 1)), nil
}
