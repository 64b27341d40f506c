package api

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/nats-io/nuid"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/files"
	"github.com/flmngr/flmngr/services/logs"
)

// Client calls the endpoints. Its errors are *fault.Error.
type Client struct {
	nc       *nats.Conn
	timeout  time.Duration
	source   string
	refusals *Refusals
}

// NewClient returns a Client over nc; timeout bounds each call that has no
// deadline of its own (default 15s).
func NewClient(nc *nats.Conn, timeout time.Duration) *Client {
	timeout = cmp.Or(timeout, 15*time.Second)
	return &Client{nc: nc, timeout: timeout}
}

func (c *Client) call(ctx context.Context, subject string, req, reply any) error {
	msg, err := c.request(ctx, subject, req)
	if err != nil {
		return err
	}
	if reply == nil {
		return nil
	}
	if err := json.Unmarshal(msg.Data, reply); err != nil {
		return fault.Internal(err, "decode reply of %s", subject)
	}
	return nil
}

// request sends req as JSON and returns the reply, or the error it
// carries as *fault.Error.
func (c *Client) request(ctx context.Context, subject string, req any) (*nats.Msg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fault.Internal(err, "encode request")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	m := nats.NewMsg(subject)
	m.Data = body
	at, ok := commands.RequestedAt(ctx)
	if !ok {
		at = time.Now()
	}
	m.Header.Set(RequestedAtHeader, at.UTC().Format(time.RFC3339Nano))
	if c.source != "" {
		m.Header.Set(SourceHeader, c.source)
	}
	if key := commands.IdempotencyKey(ctx); key != "" {
		m.Header.Set(IdempotencyKeyHeader, key)
	}
	ctx, stop := c.refusals.watch(ctx, subject)
	defer stop()
	msg, err := c.nc.RequestMsgWithContext(ctx, m)
	var refused *fault.Error
	if err != nil && errors.As(context.Cause(ctx), &refused) {
		return nil, refused
	}
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, fault.Unavailable(err, "no flmngr service answers on %s (is flmngr up running?)", subject)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return nil, fault.Unavailable(err, "flmngr did not answer %s in time", subject)
	case err != nil:
		return nil, fault.Unavailable(err, "request %s", subject)
	}
	if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
		e := &fault.Error{}
		if json.Unmarshal(msg.Data, e) != nil || e.Kind == "" {
			e = &fault.Error{Kind: fault.Kind(code), Message: msg.Header.Get(micro.ErrorHeader)}
		}
		return nil, e
	}
	return msg, nil
}

func (c *Client) command(ctx context.Context, subject string, cmd any) (CommandReply, error) {
	var r CommandReply
	err := c.call(ctx, subject, cmd, &r)
	return r, err
}

// CreateTask registers a task.
func (c *Client) CreateTask(ctx context.Context, cmd commands.CreateTask) (CommandReply, error) {
	return c.command(ctx, SubjectCreateTask, cmd)
}

// UpdateTask changes a task.
func (c *Client) UpdateTask(ctx context.Context, cmd commands.UpdateTask) (CommandReply, error) {
	return c.command(ctx, SubjectUpdateTask, cmd)
}

// DeleteTask removes a task.
func (c *Client) DeleteTask(ctx context.Context, id string) (CommandReply, error) {
	return c.command(ctx, SubjectDeleteTask, commands.DeleteTask{TaskID: id})
}

// StartTask asks for a task to start.
func (c *Client) StartTask(ctx context.Context, cmd commands.StartTask) (CommandReply, error) {
	return c.command(ctx, SubjectStartTask, cmd)
}

// StopTask asks for a task to stop.
func (c *Client) StopTask(ctx context.Context, id string) (CommandReply, error) {
	return c.command(ctx, SubjectStopTask, commands.StopTask{TaskID: id})
}

// RegisterClient registers a client.
func (c *Client) RegisterClient(ctx context.Context, cmd commands.RegisterClient) (CommandReply, error) {
	return c.command(ctx, SubjectRegisterClient, cmd)
}

// ReportClient reports a client's attributes.
func (c *Client) ReportClient(ctx context.Context, cmd commands.ReportClientInfo) (CommandReply, error) {
	return c.command(ctx, SubjectReportClient, cmd)
}

// ReportClientTask records what an agent did with a task.
func (c *Client) ReportClientTask(ctx context.Context, cmd commands.ReportClientTask) (CommandReply, error) {
	return c.command(ctx, SubjectClientTask, cmd)
}

// RecordTaskFiles records files already put in the file store.
func (c *Client) RecordTaskFiles(ctx context.Context, cmd commands.RecordTaskFiles) (CommandReply, error) {
	return c.command(ctx, SubjectTaskFiles, cmd)
}

// Match previews which clients a criterion selects.
func (c *Client) Match(ctx context.Context, criterion string) ([]MatchResult, error) {
	var out []MatchResult
	err := c.call(ctx, SubjectMatch, MatchRequest{Criterion: criterion, Consistency: latest}, &out)
	return out, err
}

// CheckCredentials reports whether a username and password open a task's
// downloads.
func (c *Client) CheckCredentials(ctx context.Context, task, username, password string) (bool, error) {
	var r CredentialsReply
	err := c.call(ctx, SubjectCheckCreds, CredentialsRequest{TaskID: task, Username: username, Password: password}, &r)
	return r.OK, err
}

// latest is the consistency the typed queries ask for: everything
// appended before the query.
var latest = Consistency{Latest: true}

// Task returns one task.
func (c *Client) Task(ctx context.Context, id string) (Task, error) {
	var t Task
	err := c.call(ctx, SubjectGetTask, GetRequest{ID: id, Consistency: latest}, &t)
	return t, err
}

// TasksPage returns a page of tasks (see ListTasksRequest).
func (c *Client) TasksPage(ctx context.Context, r ListTasksRequest) (TasksPage, error) {
	var p TasksPage
	if r.Consistency == (Consistency{}) {
		r.Consistency = latest
	}
	err := c.call(ctx, SubjectListTasks, r, &p)
	return p, err
}

// Tasks lists every task matching the request's filter, page by page.
func (c *Client) Tasks(ctx context.Context, r ListTasksRequest) ([]Task, error) {
	var out []Task
	for {
		p, err := c.TasksPage(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Tasks...)
		if p.Next == "" {
			return out, nil
		}
		r.After = p.Next
	}
}

// User returns one client (a user, in the original's words).
func (c *Client) User(ctx context.Context, id string) (projections.ClientView, error) {
	var v projections.ClientView
	err := c.call(ctx, SubjectGetClient, GetRequest{ID: id, Consistency: latest}, &v)
	return v, err
}

// UsersPage returns a page of clients (see ListClientsRequest).
func (c *Client) UsersPage(ctx context.Context, r ListClientsRequest) (ClientsPage, error) {
	var p ClientsPage
	if r.Consistency == (Consistency{}) {
		r.Consistency = latest
	}
	err := c.call(ctx, SubjectListClient, r, &p)
	return p, err
}

// Users lists every client, page by page.
func (c *Client) Users(ctx context.Context) ([]projections.ClientView, error) {
	var out []projections.ClientView
	r := ListClientsRequest{}
	for {
		p, err := c.UsersPage(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Clients...)
		if p.Next == "" {
			return out, nil
		}
		r.After = p.Next
	}
}

// Timeline returns a page of the timeline.
func (c *Client) Timeline(ctx context.Context, r TimelineRequest) (TimelineReply, error) {
	var t TimelineReply
	if r.Consistency == (Consistency{}) {
		r.Consistency = latest
	}
	err := c.call(ctx, SubjectTimeline, r, &t)
	return t, err
}

// Status describes the deployment.
func (c *Client) Status(ctx context.Context) (StatusReply, error) {
	var s StatusReply
	err := c.call(ctx, SubjectStatus, struct{}{}, &s)
	return s, err
}

// Rebuild drops and replays the views of the running deployment.
func (c *Client) Rebuild(ctx context.Context) (RebuildReply, error) {
	var r RebuildReply
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	err := c.call(ctx, SubjectRebuild, struct{}{}, &r)
	return r, err
}

// WithRefusals returns a copy of the client whose requests fail at once,
// with the reason, when the server refuses them (see Refusals).
func (c *Client) WithRefusals(r *Refusals) *Client {
	cp := *c
	cp.refusals = r
	return &cp
}

// WithSource returns a copy of the client whose requests name source as
// the component they come from ("cli", "agent/c1").
func (c *Client) WithSource(source string) *Client {
	cp := *c
	cp.source = source
	return &cp
}

// String names what the client talks to.
func (c *Client) String() string { return fmt.Sprintf("flmngr at %s", c.nc.ConnectedUrlRedacted()) }

// IssueClientKey records the public key a client's agent connects with
// and returns the JWT that goes with it.
func (c *Client) IssueClientKey(ctx context.Context, cmd commands.IssueClientKey) (IssueKeyReply, error) {
	var r IssueKeyReply
	err := c.call(ctx, SubjectIssueKey, cmd, &r)
	return r, err
}

// IssueDownloadCapability records a download capability minted for a
// client (its id and hash; the secret stays with the caller).
func (c *Client) IssueDownloadCapability(ctx context.Context, cmd commands.IssueDownloadCapability) (CommandReply, error) {
	return c.command(ctx, SubjectIssueCap, cmd)
}

// RevokeDownloadCapabilities revokes a client's download capabilities
// for a task.
func (c *Client) RevokeDownloadCapabilities(ctx context.Context, cmd commands.RevokeDownloadCapabilities) (CommandReply, error) {
	return c.command(ctx, SubjectRevokeCap, cmd)
}

// RevokeClientKey stops a client's key from connecting.
func (c *Client) RevokeClientKey(ctx context.Context, cmd commands.RevokeClientKey) (CommandReply, error) {
	return c.command(ctx, SubjectRevokeKey, cmd)
}

// Events reads a page of the event log (see EventsRequest).
func (c *Client) Events(ctx context.Context, r EventsRequest) ([]events.Envelope, uint64, error) {
	var reply EventsReply
	if err := c.call(ctx, SubjectEvents, r, &reply); err != nil {
		return nil, 0, err
	}
	out := make([]events.Envelope, 0, len(reply.Events))
	for _, w := range reply.Events {
		e, err := events.Decode(w.Event, w.Seq)
		if err != nil {
			return nil, 0, fault.Internal(err, "decode event %d", w.Seq)
		}
		out = append(out, e)
	}
	return out, reply.Next, nil
}

// Logs reads a page of what a task's processes printed (see LogsRequest).
func (c *Client) Logs(ctx context.Context, r LogsRequest) (logs.Page, error) {
	var p logs.Page
	err := c.call(ctx, SubjectLogs, r, &p)
	return p, err
}

// UploadFile sends what r holds as the file name of task, in parts, and
// has the cloud store it; sent, when set, is told the bytes sent so far.
// Nothing is stored unless every byte arrived.
func (c *Client) UploadFile(ctx context.Context, task, name string, r io.Reader, sent func(int64)) (events.FileRef, error) {
	upload := nuid.Next()
	h := sha256.New()
	buf := make([]byte, files.PartSize)
	var size int64
	parts := 0
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			h.Write(buf[:n])
			if err := c.call(ctx, SubjectFilePart, FilePart{Upload: upload, Part: parts, Data: buf[:n]}, nil); err != nil {
				return events.FileRef{}, err
			}
			parts++
			size += int64(n)
			if sent != nil {
				sent(size)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return events.FileRef{}, fmt.Errorf("read %s: %w", name, err)
		}
	}
	if size == 0 {
		return events.FileRef{}, fault.Invalid("files", "%s is empty", name)
	}
	var ref events.FileRef
	err := c.call(ctx, SubjectTaskUpload, UploadRequest{TaskID: task, Upload: upload, Name: name, Parts: parts, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))}, &ref)
	return ref, err
}
