package api

import (
	"context"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
)

// VerbTasks carries several of a client's task reports at once
// (TaskReports → TaskReportsReply): what an agent has queued goes in one
// request and one append to the log.
const VerbTasks = "tasks"

// TaskReport is one report of a batch, with the idempotency key and the
// time it was made that a single report carries in headers.
type TaskReport struct {
	Key         string                    `json:"key"`
	RequestedAt time.Time                 `json:"requested_at"`
	Report      commands.ReportClientTask `json:"report"`
}

// TaskReports is a batch of at most commands.MaxBatch reports, decided
// and stored in order.
type TaskReports struct {
	Reports []TaskReport `json:"reports"`
}

// TaskReportResult is what became of one report: its events' last
// sequence, or why it was refused.
type TaskReportResult struct {
	Seq      uint64       `json:"seq"`
	Replayed bool         `json:"replayed,omitempty"`
	Error    *fault.Error `json:"error,omitempty"`
}

// TaskReportsReply has a result per report, in order.
type TaskReportsReply struct {
	Results []TaskReportResult `json:"results"`
}

// BatchExecutor decides several commands on one aggregate in one append.
type BatchExecutor interface {
	ExecuteBatch(ctx context.Context, items []commands.Keyed) ([]commands.Result, []error, error)
}

// taskReports runs a client's batch of task reports, each acting for
// that client alone.
func (s *Server) taskReports(ctx context.Context, id string, data []byte) (any, error) {
	var r TaskReports
	if err := decode(data, &r); err != nil {
		return nil, err
	}
	batch, ok := s.exec.(BatchExecutor)
	if !ok {
		return nil, fault.Unavailable(nil, "this deployment takes reports one by one")
	}
	if len(r.Reports) == 0 || len(r.Reports) > commands.MaxBatch {
		return nil, fault.Invalid("reports", "a batch holds 1 to %d reports, not %d", commands.MaxBatch, len(r.Reports))
	}
	items := make([]commands.Keyed, len(r.Reports))
	for i, rep := range r.Reports {
		if rep.Report.ClientID != "" && rep.Report.ClientID != id {
			return nil, &fault.Error{Kind: fault.KindForbidden, Field: "user_id", Message: "client " + id + " may not act for client " + rep.Report.ClientID}
		}
		rep.Report.ClientID = id
		items[i] = commands.Keyed{Cmd: rep.Report, Key: rep.Key, RequestedAt: rep.RequestedAt}
	}
	res, errs, err := batch.ExecuteBatch(ctx, items)
	if err != nil {
		return nil, err
	}
	reply := TaskReportsReply{Results: make([]TaskReportResult, len(res))}
	for i := range res {
		reply.Results[i] = TaskReportResult{Seq: res[i].Seq, Replayed: res[i].Replayed}
		if errs[i] != nil {
			reply.Results[i] = TaskReportResult{Error: fault.AsError(errs[i])}
		}
	}
	return reply, nil
}

// Tasks reports several things that happened to the client's task runs,
// in order, in one request; each report is refused or stored on its own
// merits, as Task would.
func (cc *ClientConn) Tasks(ctx context.Context, reports []TaskReport) (TaskReportsReply, error) {
	for i := range reports {
		reports[i].Report.ClientID = cc.id
	}
	var r TaskReportsReply
	err := cc.c.call(ctx, ClientSubject(cc.id, VerbTasks), TaskReports{Reports: reports}, &r)
	if err == nil && len(r.Results) != len(reports) {
		err = fault.Internal(nil, "%d results for %d reports", len(r.Results), len(reports))
	}
	return r, err
}
