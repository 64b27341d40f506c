package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
)

// reasonRevoked is why a run stops when the site revokes its approval.
const reasonRevoked = "the site revoked its approval"

// awaiting is a run the agent reported as waiting for approval.
type awaiting struct {
	statement string
	since     time.Time
}

// approving reports whether the agent asks its site before running
// tasks.
func (a *Agent) approving() bool {
	return a.cfg.Approval != "" && a.cfg.Approval != ApprovalAny && !a.cfg.simulate
}

// openApprovals reads the approvals file and watches it; changed is told
// of every change. Unreadable approvals stop the agent before anything
// runs.
func (a *Agent) openApprovals() (changed <-chan struct{}, stop func(), err error) {
	c := make(chan struct{}, 1)
	// Watch first: a change between the read and the watch is not lost.
	stop, err = watchFile(a.cfg.WorkDir, ApprovalsFile, c)
	if err != nil {
		return nil, nil, fmt.Errorf("agent: %w", err)
	}
	if a.approvals, err = ReadApprovals(a.cfg.WorkDir); err != nil {
		stop()
		return nil, nil, fmt.Errorf("agent: %w", err)
	}
	return c, stop, nil
}

// reloadApprovals applies a change of the approvals file: an approval
// lets its run start at once, a revoked one stops its run. Approvals it
// cannot read approve nothing until they are fixed. Loop goroutine.
func (a *Agent) reloadApprovals(ctx context.Context) {
	as, err := ReadApprovals(a.cfg.WorkDir)
	if err != nil {
		a.cfg.Logger.Error("approvals unreadable: nothing is approved until the file is fixed", "err", err)
		as = Approvals{}
	}
	a.approvals = as
	for _, r := range a.procs {
		if !r.freed && r.approval != "" && !as.Approves(r.offer) {
			a.cfg.Logger.Warn("approval revoked: stopping the task", "task_id", r.offer.TaskID, "run", r.offer.Run)
			r.requestStop(reasonRevoked)
		}
	}
	a.reconcile(ctx)
}

// needsApproval reports whether an offer waits for the site's approval.
func (a *Agent) needsApproval(o events.Offer) bool {
	return a.asks(o) && !a.approvals.Approves(o)
}

// asks reports whether an offer may run only with the site's approval.
// Under manual every task may (a task no trusted key signed is refused
// outright, not held); under trusted only those no trusted key signed.
func (a *Agent) asks(o events.Offer) bool {
	switch {
	case !a.approving():
		return false
	case a.cfg.Approval == ApprovalManual:
		return a.trusted(o) == nil
	}
	return a.trusted(o) != nil
}

// approvalOf is the statement the site approved for a run the agent
// starts ("": it runs without asking).
func (a *Agent) approvalOf(o events.Offer) string {
	if !a.asks(o) || !a.approvals.Approves(o) {
		return ""
	}
	return events.StatementDigest(o)
}

// holdForApproval finds the offers that wait for the site's approval,
// reports those newly waiting and those approved since, and writes the
// pending file for the site. It returns the runs held. Loop goroutine.
func (a *Agent) holdForApproval(ctx context.Context) map[commands.TaskRun]bool {
	if !a.approving() {
		return nil
	}
	held := map[commands.TaskRun]bool{}
	list := []Pending{}
	for _, o := range a.offers {
		k := runKey(o)
		if _, running := a.procs[k]; running || a.done[k] || a.quarantined[key{o.TaskID, o.Run, o.SpecSeq}] {
			continue
		}
		d := events.StatementDigest(o)
		if !a.needsApproval(o) {
			if w, ok := a.awaiting[k]; ok {
				delete(a.awaiting, k)
				if w.statement == d && a.approvals.Approves(o) {
					a.cfg.Logger.Info("task approved", "task_id", o.TaskID, "run", o.Run, "statement", d)
					a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskApproved, TaskID: o.TaskID, Run: o.Run, Statement: d})
				}
			}
			continue
		}
		held[k] = true
		signers := signersOf(o)
		w, ok := a.awaiting[k]
		if !ok || w.statement != d {
			w = awaiting{statement: d, since: time.Now()}
			a.awaiting[k] = w
			a.cfg.Logger.Info("task awaits the site's approval", "task_id", o.TaskID, "run", o.Run, "statement", d)
			a.report(ctx, commands.ReportClientTask{Kind: commands.ClientTaskAwaitingApproval, TaskID: o.TaskID, Run: o.Run, SpecSeq: o.SpecSeq,
				Statement: d, Files: o.Files, Signers: signers})
		}
		list = append(list, Pending{TaskID: o.TaskID, Run: o.Run, SpecSeq: o.SpecSeq, Statement: d, Host: o.Host, Port: o.Port,
			ClientCommand: o.ClientCommand, ClientArguments: o.ClientArguments, Files: o.Files, Signers: signers, Since: w.since})
	}
	for k := range a.awaiting {
		if !held[k] {
			delete(a.awaiting, k)
		}
	}
	a.writePending(list)
	return held
}

// writePending replaces the pending file when what is held changed.
func (a *Agent) writePending(list []Pending) {
	b, _ := json.Marshal(list)
	if a.pendingWritten != nil && bytes.Equal(b, a.pendingWritten) {
		return
	}
	if err := writeAtomic(filepath.Join(a.cfg.WorkDir, PendingFile), PendingList{Pending: list}); err != nil {
		a.cfg.Logger.Error("pending approvals file", "err", err)
		return
	}
	a.pendingWritten = b
}

// signersOf are the keys whose signatures over the offer verify.
func signersOf(o events.Offer) []string {
	var out []string
	for _, s := range o.Signatures {
		if s.Verify(o) == nil {
			out = append(out, s.PublicKey)
		}
	}
	return out
}
