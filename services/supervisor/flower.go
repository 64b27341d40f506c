package supervisor

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/tasks/flowerapp"
)

// flowerTLS issues the TLS files of a Flower App run's SuperLink under
// the task's Flower state directory and records the CA certificate, which
// the matcher hands to the clients with their offer.
func (s *Supervisor) flowerTLS(ctx context.Context, task string, st commands.TaskState, run string) error {
	state := flowerapp.StateDir(s.cfg.WorkDir, task)
	// What an earlier run admitted is not this run's.
	if err := flowerapp.RevokeAll(state); err != nil {
		return fmt.Errorf("supernode keys: %w", err)
	}
	ca, err := flowerapp.IssueTLS(state, []string{st.Spec.Host})
	if err != nil {
		return err
	}
	return s.recordCtx(ctx, task, &events.TaskSuperLinkCAIssued{Run: run, Certificate: string(ca)})
}

// flowerMember is what the supervisor knows of one client for a run.
type flowerMember struct {
	offered, quarantined bool
	key                  string
}

func (m flowerMember) admitted() bool { return m.offered && !m.quarantined && m.key != "" }

// admitSuperNodes keeps the SuperNode keys the run's SuperLink admits
// (see flowerapp.Admit) equal to those of the clients offered the run
// (the criterion selects them) that reported a key for it and did not
// quarantine it, reading the clients' events from the start request at
// seq on, until ctx ends.
func (s *Supervisor) admitSuperNodes(ctx context.Context, task, run string, seq uint64) {
	state := flowerapp.StateDir(s.cfg.WorkDir, task)
	members := map[string]*flowerMember{}
	var filters []string
	for _, t := range []string{events.ClientOffersChangedV1, events.ClientSuperNodeKeyReportedV1, events.ClientTaskQuarantinedV1} {
		filters = append(filters, s.log.TypeFilter(t))
	}
	apply := func(e events.Envelope) error {
		seq = e.Seq + 1
		client := e.Aggregate.ID
		m := members[client]
		if m == nil {
			m = &flowerMember{}
			members[client] = m
		}
		was := *m
		switch p := e.Event.(type) {
		case *events.ClientOffersChanged:
			m.offered = slices.ContainsFunc(p.Offers, func(o events.Offer) bool { return o.TaskID == task && o.Run == run })
		case *events.ClientSuperNodeKeyReported:
			if p.TaskID == task && p.Run == run {
				m.key = p.PublicKey
			}
		case *events.ClientTaskQuarantined:
			if p.TaskID == task && p.Run == run {
				m.quarantined = true
			}
		}
		if *m == was {
			return nil
		}
		var err error
		if m.admitted() {
			err = flowerapp.Admit(state, client, m.key)
		} else if was.admitted() {
			err = flowerapp.Revoke(state, client)
		}
		if err != nil {
			s.cfg.Logger.Error("supernode keys", "task_id", task, "run", run, "client_id", client, "err", err)
		} else if m.admitted() != was.admitted() || m.key != was.key {
			s.cfg.Logger.Info("supernode admitted", "task_id", task, "run", run, "client_id", client, "admitted", m.admitted())
		}
		return nil
	}
	for {
		err := s.log.Follow(ctx, eventlog.FollowOptions{From: seq, Filters: filters}, apply)
		if ctx.Err() != nil {
			return
		}
		s.cfg.Logger.Warn("supernode keys: the clients' events cannot be read", "task_id", task, "run", run, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
