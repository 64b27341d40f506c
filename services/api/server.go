package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/auth"
	"github.com/flmngr/flmngr/services/limit"
)

// Executor runs commands.
type Executor interface {
	Execute(ctx context.Context, cmd commands.Command) (commands.Result, error)
}

// FileVerifier checks that a task file is stored with the digest an event
// will record.
type FileVerifier interface {
	Verify(ctx context.Context, task string, ref events.FileRef) error
}

// Decider tells why each active task is or is not offered to a client
// (the matcher).
type Decider interface {
	Decisions(clientID string) ([]events.Decision, bool)
}

// StreamInfo tells how far the log goes.
type StreamInfo interface {
	LastSeq(ctx context.Context) (uint64, error)
}

// Config configures the endpoints.
type Config struct {
	// Version is reported by $SRV.INFO.
	Version string
	// Timeout bounds each request (default 10s).
	Timeout time.Duration
	// Concurrency bounds requests handled at once (default 512).
	Concurrency int
	// MaxRequest bounds a request body (default 1 MiB).
	MaxRequest int
	// Files checks uploads before they are recorded (nil: uploads are
	// refused).
	Files FileVerifier
	// Decisions, when set, are the matcher's: a client's view shows why
	// each active task is or is not offered to it as the matcher decides
	// now, not only as it last changed the client's offers.
	Decisions Decider
	// Events and Chunks serve the per-client endpoints (a client's own
	// history and offers, the files of tasks offered to it).
	Events ClientEvents
	Chunks ChunkReader
	// ClientRate and ClientBurst bound each client's requests on its own
	// endpoints (default 50 a second, bursts of 500; a negative rate
	// turns the limit off). OnLimited is told of every refusal.
	ClientRate  float64
	ClientBurst int
	OnLimited   func(clientID string)
	// KeysEnforced, when set, is waited on after a client key is issued
	// or revoked, so that the reply means the NATS server already admits
	// (or refuses) that key.
	KeysEnforced func(ctx context.Context, seq uint64) error
	// Admit, when set, may refuse every command before it is decided (the
	// data volume is nearly full, say); queries are not asked. Disk tells
	// the status the data volume's free space and whether it is low.
	Admit func() error
	Disk  func() (free uint64, low bool)
	// Reader, Logs and Uploads serve the event log, the processes' output
	// and uploads to operators (nil: not served).
	Reader  EventReader
	Logs    LogReader
	Uploads Uploader
	// Issuer signs the JWT of a client key that is issued (nil: the
	// deployment runs without authentication and issues none).
	Issuer ClientIssuer
	// Enrol makes the identities of enrolment tokens (nil: no tokens).
	Enrol EnrolmentIssuer
	// Now is the clock enrolment tokens expire by (default time.Now).
	Now func() time.Time
	// OnRefused, when set, is told of every request refused because of
	// its reply subject.
	OnRefused func(subject string)
	// Observe, when set, is told how long each request took.
	Observe func(endpoint string, d time.Duration, failed bool)
	Logger  *slog.Logger
}

// Views is what the server reads: the views the cloud keeps, whatever
// stores them (the cloud wires the Badger store).
type Views interface {
	Task(id string) (*projections.TaskView, error)
	Client(id string) (*projections.ClientView, error)
	Clients() ([]projections.ClientView, error)
	TasksPage(f projections.TaskFilter, after string, limit int) ([]projections.TaskView, string, error)
	ClientsPage(after string, limit int) ([]projections.ClientView, string, error)
	Timeline(q projections.TimelineQuery) ([]projections.TimelineEntry, uint64, error)
	Counts() (tasks, clients int, err error)
	DeadLetters() (int, *projections.DeadLetter, error)
	// Applied is the last log sequence the views hold; WaitFor returns
	// once they hold seq.
	Applied() uint64
	WaitFor(ctx context.Context, seq uint64) error
	// Rebuild makes the views anew from the log.
	Rebuild(ctx context.Context) (uint64, error)
}

// Server serves the command and query endpoints.
type Server struct {
	exec  Executor
	views Views
	log   StreamInfo
	cfg   Config
	sem   chan struct{}

	limiter *limit.Limiter

	mu         sync.Mutex
	closed     bool
	inflight   sync.WaitGroup
	refusedLog atomic.Int64 // when a refusal was last logged
}

// NewServer returns a Server; Run serves it.
func NewServer(exec Executor, views Views, log StreamInfo, cfg Config) *Server {
	cfg.Timeout = cmp.Or(cfg.Timeout, 10*time.Second)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, 512)
	cfg.MaxRequest = cmp.Or(cfg.MaxRequest, 1<<20)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Version = cmp.Or(cfg.Version, "0.1.0")
	cfg.ClientRate = cmp.Or(cfg.ClientRate, 50)
	cfg.ClientBurst = cmp.Or(cfg.ClientBurst, 500)
	return &Server{exec: exec, views: views, log: log, cfg: cfg, sem: make(chan struct{}, cfg.Concurrency),
		limiter: limit.New(cfg.ClientRate, cfg.ClientBurst)}
}

type endpoint struct {
	name, subject string
	fn            func(context.Context, []byte) (any, error)
	command       bool // it may append to the log
}

// Start registers the services on nc; they serve until ctx ends or stop is
// called. When Start returns, requests are being answered. nc should be a
// connection that may publish to inboxes only (auth.RoleResponder): a
// request's reply subject is then the only place an answer can go, and it
// is checked before anything is done.
func (s *Server) Start(ctx context.Context, nc *nats.Conn) (stop func(), err error) {
	cmds := []endpoint{
		{"task_create", SubjectCreateTask, command[commands.CreateTask](s, true), true},
		{"task_update", SubjectUpdateTask, command[commands.UpdateTask](s, true), true},
		{"task_delete", SubjectDeleteTask, command[commands.DeleteTask](s, false), true},
		{"task_start", SubjectStartTask, command[commands.StartTask](s, false), true},
		{"task_stop", SubjectStopTask, command[commands.StopTask](s, false), true},
		{"client_register", SubjectRegisterClient, command[commands.RegisterClient](s, false), true},
		{"client_report", SubjectReportClient, command[commands.ReportClientInfo](s, false), true},
		{"client_task", SubjectClientTask, command[commands.ReportClientTask](s, false), true},
		{"client_key_issue", SubjectIssueKey, s.issueKey, true},
		{"client_key_revoke", SubjectRevokeKey, s.keyEnforced(command[commands.RevokeClientKey](s, false)), true},
		{"task_files", SubjectTaskFiles, s.taskFiles, true},
		{"file_part", SubjectFilePart, s.filePart, true},
		{"task_upload", SubjectTaskUpload, s.taskUpload, true},
		{"client_capability_issue", SubjectIssueCap, command[commands.IssueDownloadCapability](s, false), true},
		{"client_capability_revoke", SubjectRevokeCap, command[commands.RevokeDownloadCapabilities](s, false), true},
		{"enrol_create", SubjectCreateEnrolment, s.createEnrolment, true},
		{"task_sign", SubjectSignTask, command[commands.SignTask](s, false), true},
	}
	queries := []endpoint{
		{"task_get", SubjectGetTask, s.getTask, false},
		{"task_list", SubjectListTasks, s.listTasks, false},
		{"client_get", SubjectGetClient, s.getClient, false},
		{"client_list", SubjectListClient, s.listClients, false},
		{"timeline", SubjectTimeline, s.timeline, false},
		{"status", SubjectStatus, s.status, false},
		{"match", SubjectMatch, s.match, false},
		{"task_credentials", SubjectCheckCreds, s.checkCredentials, false},
		{"rebuild", SubjectRebuild, s.rebuild, false},
		{"events", SubjectEvents, s.events, false},
		{"logs", SubjectLogs, s.logs, false},
	}
	var svcs []*service
	var subs []*nats.Subscription
	stop = func() {
		for _, svc := range svcs {
			svc.stop()
		}
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.inflight.Wait()
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	for _, def := range []struct {
		name, desc string
		eps        []endpoint
	}{
		{"flmngr-commands", "flmngr commands: create, update, delete, start and stop tasks; register clients and report their attributes", cmds},
		{"flmngr-queries", "flmngr queries: tasks, clients (users), the timeline and status; view rebuilds", queries},
		{"flmngr-clients", "flmngr per-client endpoints: a client agent's reports, history, offers and task files, on its own subjects", s.clientEndpoints()},
		{"flmngr-enrol", "flmngr enrolment: a device holding a token registers the key it made", []endpoint{{"enrol", auth.EnrolPrefix + ".*", s.enrol, true}}},
	} {
		svc := newService(def.name, s.cfg.Version, def.desc)
		svcs = append(svcs, svc)
		for _, ep := range def.eps {
			if err := svc.add(nc, ep.name, ep.subject, func(i int) nats.MsgHandler { return s.serve(ctx, svc, i, ep) }); err != nil {
				return nil, fmt.Errorf("add endpoint %s: %w", ep.subject, err)
			}
		}
		for subject, verb := range svc.discoverySubjects() {
			sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
				if !auth.ReplyAllowed("", m.Reply) {
					s.refuse(m)
					return
				}
				if reply, err := jsonReply(svc.discovery(verb)); err == nil {
					_ = m.RespondMsg(reply)
				}
			})
			if err != nil {
				return nil, fmt.Errorf("discovery %s: %w", subject, err)
			}
			subs = append(subs, sub)
		}
	}
	// The subscriptions are in the server once a round trip completes:
	// only then do other connections find the endpoints.
	if err := nc.Flush(); err != nil {
		return nil, fmt.Errorf("register endpoints: %w", err)
	}
	return stop, nil
}

// serve checks a request's reply subject before anything else (a
// client's request is answered on its own inbox prefix only, any other
// outside the clients' inboxes), then runs it on its own goroutine,
// bounded by the semaphore, so one slow request never holds up the
// subscription.
func (s *Server) serve(ctx context.Context, svc *service, i int, ep endpoint) nats.MsgHandler {
	perClient := strings.HasPrefix(ep.subject, ClientPrefix+".")
	enrol := strings.HasPrefix(ep.subject, auth.EnrolPrefix+".")
	return func(m *nats.Msg) {
		id := ""
		if perClient {
			id = clientOfSubject(m.Subject)
		}
		allowed := auth.ReplyAllowed(id, m.Reply)
		if enrol {
			allowed = auth.EnrolReplyAllowed(enrolTokenOf(m.Subject), m.Reply)
		}
		if !allowed {
			s.refuse(m)
			return
		}
		select {
		case s.sem <- struct{}{}:
		case <-ctx.Done():
			s.respond(svc, i, ep, m, time.Now(), nil, fault.Unavailable(ctx.Err(), "shutting down"))
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			<-s.sem
			return
		}
		s.inflight.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.inflight.Done()
			defer func() { <-s.sem }()
			s.handle(ctx, svc, i, ep, m)
		}()
	}
}

// refuse drops a request whose reply subject points where its sender has
// no business; it is counted and logged, and nothing is done.
func (s *Server) refuse(m *nats.Msg) {
	if s.cfg.OnRefused != nil {
		s.cfg.OnRefused(m.Subject)
	}
	// A flood of them is logged once a second.
	now := time.Now().UnixNano()
	if last := s.refusedLog.Load(); now-last > int64(time.Second) && s.refusedLog.CompareAndSwap(last, now) {
		s.cfg.Logger.Warn("request refused: reply subject not allowed", "subject", m.Subject, "reply", m.Reply)
	}
}

func (s *Server) handle(ctx context.Context, svc *service, i int, ep endpoint, m *nats.Msg) {
	start := time.Now()
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	rctx = context.WithValue(rctx, subjectKey{}, m.Subject)
	if src := m.Header.Get(SourceHeader); src != "" {
		rctx = commands.WithSource(rctx, src)
	}
	if key := m.Header.Get(IdempotencyKeyHeader); key != "" {
		rctx = commands.WithIdempotencyKey(rctx, key)
	}
	if at, err := time.Parse(time.RFC3339Nano, m.Header.Get(RequestedAtHeader)); err == nil {
		rctx = commands.WithRequestedAt(rctx, at)
	}
	if len(m.Data) > s.cfg.MaxRequest {
		s.respond(svc, i, ep, m, start, nil, fault.Invalid("", "request is larger than %d bytes", s.cfg.MaxRequest))
		return
	}
	if ep.command && s.cfg.Admit != nil {
		if err := s.cfg.Admit(); err != nil {
			s.respond(svc, i, ep, m, start, nil, err)
			return
		}
	}
	out, err := ep.fn(rctx, m.Data)
	s.respond(svc, i, ep, m, start, out, err)
}

// respond answers a request with out, or with err as the micro protocol
// carries errors, and counts it.
func (s *Server) respond(svc *service, i int, ep endpoint, m *nats.Msg, start time.Time, out any, err error) {
	var reply *nats.Msg
	errText := ""
	if err != nil {
		e := fault.AsError(err)
		if e.Kind == fault.KindInternal || e.Kind == fault.KindUnavailable {
			s.cfg.Logger.Error("request failed", "subject", ep.subject, "err", err)
		}
		body, _ := json.Marshal(e)
		reply, errText = errorReply(string(e.Kind), e.Message, body), string(e.Kind)+": "+e.Message
	} else if raw, ok := out.(rawReply); ok {
		reply = &nats.Msg{Data: raw}
	} else if reply, err = jsonReply(out); err != nil {
		body, _ := json.Marshal(fault.Internal(err, "encode reply"))
		reply, errText = errorReply(string(fault.KindInternal), "encode reply", body), "internal: encode reply"
	}
	if err := m.RespondMsg(reply); err != nil {
		s.cfg.Logger.Warn("reply failed", "subject", ep.subject, "err", err)
	}
	d := time.Since(start)
	svc.observe(i, d, errText)
	if s.cfg.Observe != nil {
		s.cfg.Observe(ep.name, d, errText != "")
	}
}

// decode parses a request body strictly: unknown fields are an error
// naming them.
func decode(data []byte, v any) error {
	if len(data) == 0 {
		data = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fault.Invalid(fieldOf(err), "bad request: %v", err)
	}
	return nil
}

// decodeFor decodes the request of an endpoint that needs a part of the
// deployment: without it (has false) the endpoint is unavailable, as the
// deployment says (what: "serves no process output").
func decodeFor[R any](data []byte, has bool, what string) (R, error) {
	var r R
	if err := decode(data, &r); err != nil {
		return r, err
	}
	if !has {
		return r, fault.Unavailable(nil, "this deployment %s", what)
	}
	return r, nil
}

func command[C any](s *Server, pointer bool) func(context.Context, []byte) (any, error) {
	return func(ctx context.Context, data []byte) (any, error) {
		var c C
		if err := decode(data, &c); err != nil {
			return nil, err
		}
		var cmd commands.Command
		if pointer {
			cmd = any(&c).(commands.Command)
		} else {
			cmd = any(c).(commands.Command)
		}
		res, err := s.exec.Execute(ctx, cmd)
		if err != nil {
			return nil, err
		}
		reply := CommandReply{Seq: res.Seq, Events: make([]EventRef, len(res.Events)), Replayed: res.Replayed}
		for i, e := range res.Events {
			reply.Events[i] = EventRef{ID: e.ID, Type: e.Type, Seq: e.Seq}
		}
		return reply, nil
	}
}

// SnapshotHealth is what views that keep snapshots tell of them: the last
// snapshot's sequence (zero: none) and time, and the events the last
// rebuild read and how long it took.
type SnapshotHealth interface {
	SnapshotHealth() (seq uint64, taken time.Time, rebuildRead int64, rebuildTook time.Duration)
}

// ClientIssuer signs the JWT of a client's public key.
type ClientIssuer interface {
	IssueClient(id, publicKey string) (string, error)
}

// issueKey records a client's public key and answers with the JWT it
// connects with (none when the deployment runs without authentication),
// once the servers enforce what the event changed (the replaced key, if
// any, no longer connects).
func (s *Server) issueKey(ctx context.Context, data []byte) (any, error) {
	var c commands.IssueClientKey
	if err := decode(data, &c); err != nil {
		return nil, err
	}
	v, err := s.keyEnforced(command[commands.IssueClientKey](s, false))(ctx, data)
	if err != nil {
		return nil, err
	}
	reply := IssueKeyReply{CommandReply: v.(CommandReply)}
	if s.cfg.Issuer != nil {
		if reply.JWT, err = s.cfg.Issuer.IssueClient(c.ClientID, c.PublicKey); err != nil {
			return nil, fault.Internal(err, "sign the client's JWT")
		}
	}
	return reply, nil
}

// keyEnforced makes a key command answer only once the server enforces
// what it recorded.
func (s *Server) keyEnforced(fn func(context.Context, []byte) (any, error)) func(context.Context, []byte) (any, error) {
	return func(ctx context.Context, data []byte) (any, error) {
		v, err := fn(ctx, data)
		if err != nil || s.cfg.KeysEnforced == nil {
			return v, err
		}
		if err := s.cfg.KeysEnforced(ctx, v.(CommandReply).Seq); err != nil {
			return nil, fault.Unavailable(err, "the key is recorded (event %d) but not enforced yet", v.(CommandReply).Seq)
		}
		return v, nil
	}
}

// settle waits until the views answer with the consistency asked for.
func (s *Server) settle(ctx context.Context, c Consistency) error {
	min := c.MinSeq
	if c.Latest {
		last, err := s.log.LastSeq(ctx)
		if err != nil {
			return fault.Unavailable(err, "event log unavailable")
		}
		min = max(min, last)
	}
	if min == 0 {
		return nil
	}
	if err := s.views.WaitFor(ctx, min); err != nil {
		return fault.Unavailable(err, "views are behind the log (at %d, need %d)", s.views.Applied(), min)
	}
	return nil
}

// settled decodes a query and waits until the views are as recent as it
// asks.
func settled[R interface{ consistency() Consistency }](ctx context.Context, s *Server, data []byte) (R, error) {
	var r R
	if err := decode(data, &r); err != nil {
		return r, err
	}
	return r, s.settle(ctx, r.consistency())
}

func (s *Server) getTask(ctx context.Context, data []byte) (any, error) {
	v, err := getView(ctx, s, data, s.views.Task, "task")
	if err != nil {
		return nil, err
	}
	return toTask(*v), nil
}

// getView answers a GetRequest with the view of the kind it names.
func getView[V any](ctx context.Context, s *Server, data []byte, read func(string) (*V, error), kind string) (*V, error) {
	r, err := settled[GetRequest](ctx, s, data)
	if err != nil {
		return nil, err
	}
	return existing(read, kind, r.ID)
}

// existing reads the view of the kind ("task", "client") with id; none is
// a not-found error.
func existing[V any](read func(string) (*V, error), kind, id string) (*V, error) {
	v, err := read(id)
	if err != nil {
		return nil, fault.Internal(err, "read %s view", kind)
	}
	if v == nil {
		return nil, fault.NotFound("%s %s not found", kind, id)
	}
	return v, nil
}

// latestTask reads task id's view once the views hold every event
// appended so far; none is a not-found error.
func (s *Server) latestTask(ctx context.Context, id string) (*projections.TaskView, error) {
	if err := s.settle(ctx, Consistency{Latest: true}); err != nil {
		return nil, err
	}
	return existing(s.views.Task, "task", id)
}

func (s *Server) listTasks(ctx context.Context, data []byte) (any, error) {
	var r ListTasksRequest
	if err := decode(data, &r); err != nil {
		return nil, err
	}
	if err := commands.ValidateStatus("status", r.Status); err != nil {
		return nil, err
	}
	if err := s.settle(ctx, r.Consistency); err != nil {
		return nil, err
	}
	vs, next, err := s.views.TasksPage(r.TaskFilter, r.After, r.Limit)
	if err != nil {
		return nil, fault.Invalid("after", "%v", err)
	}
	out := TasksPage{Tasks: make([]Task, len(vs)), Next: next}
	for i, v := range vs {
		out.Tasks[i] = toTask(v)
	}
	return out, nil
}

func (s *Server) getClient(ctx context.Context, data []byte) (any, error) {
	v, err := getView(ctx, s, data, s.views.Client, "client")
	if err != nil {
		return nil, err
	}
	if s.cfg.Decisions != nil {
		if d, ok := s.cfg.Decisions.Decisions(v.ID); ok {
			v.Decisions = d
		}
	}
	return v, nil
}

func (s *Server) listClients(ctx context.Context, data []byte) (any, error) {
	r, err := settled[ListClientsRequest](ctx, s, data)
	if err != nil {
		return nil, err
	}
	vs, next, err := s.views.ClientsPage(r.After, r.Limit)
	if err != nil {
		return nil, fault.Internal(err, "read client views")
	}
	return ClientsPage{Clients: vs, Next: next}, nil
}

func (s *Server) timeline(ctx context.Context, data []byte) (any, error) {
	r, err := settled[TimelineRequest](ctx, s, data)
	if err != nil {
		return nil, err
	}
	entries, next, err := s.views.Timeline(r.TimelineQuery)
	if err != nil {
		return nil, fault.Invalid("", "%v", err)
	}
	if len(entries) == 0 && r.After == 0 {
		// No timeline at all: say whether the task or client exists.
		if r.Task != "" {
			if v, err := s.views.Task(r.Task); err == nil && v == nil {
				return nil, fault.NotFound("task %s not found", r.Task)
			}
		}
		if r.Client != "" {
			if v, err := s.views.Client(r.Client); err == nil && v == nil {
				return nil, fault.NotFound("client %s not found", r.Client)
			}
		}
	}
	return TimelineReply{Entries: entries, Next: next}, nil
}

func (s *Server) status(ctx context.Context, _ []byte) (any, error) {
	last, err := s.log.LastSeq(ctx)
	if err != nil {
		return nil, fault.Unavailable(err, "event log unavailable")
	}
	tasks, clients, err := s.views.Counts()
	if err != nil {
		return nil, fault.Internal(err, "read the views")
	}
	dead, lastDead, err := s.views.DeadLetters()
	if err != nil {
		return nil, fault.Internal(err, "read dead letters")
	}
	reply := StatusReply{StreamSeq: last, ViewsSeq: s.views.Applied(), Tasks: tasks, Clients: clients,
		DeadLetters: dead, LastDeadLetter: lastDead}
	if s.cfg.Disk != nil {
		reply.DataVolumeFree, reply.StorageLow = s.cfg.Disk()
	}
	if sz, ok := s.log.(interface {
		Size(context.Context) (uint64, uint64, error)
	}); ok {
		if _, b, err := sz.Size(ctx); err == nil {
			reply.StreamBytes = b
		}
	}
	if h, ok := s.views.(SnapshotHealth); ok {
		seq, taken, read, took := h.SnapshotHealth()
		reply.SnapshotSeq, reply.RebuildEvents = seq, read
		if seq > 0 {
			reply.SnapshotTaken = &taken
		}
		if took > 0 {
			reply.RebuildTook = took.Round(time.Millisecond).String()
			reply.RebuildEstimate = rebuildEstimate(took, read, last-min(seq, last)).String()
		}
	}
	return reply, nil
}

// rebuildEstimate is how long reading pending events takes at the pace of
// a rebuild that read read events in took (loading its snapshot included).
func rebuildEstimate(took time.Duration, read int64, pending uint64) time.Duration {
	d := took
	if read > 0 {
		d = took / time.Duration(read) * time.Duration(pending)
	}
	if d < time.Second {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

func (s *Server) rebuild(ctx context.Context, _ []byte) (any, error) {
	start := time.Now()
	// A rebuild of a long log may take longer than a request; it runs
	// under its own bound.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
	defer cancel()
	seq, err := s.views.Rebuild(rctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fault.Unavailable(err, "rebuild did not finish in time")
		}
		return nil, fault.Internal(err, "rebuild views")
	}
	return RebuildReply{Seq: seq, Duration: time.Since(start).Round(time.Millisecond).String()}, nil
}

// taskFiles records uploaded files once the store confirms each one's
// size and digest.
func (s *Server) taskFiles(ctx context.Context, data []byte) (any, error) {
	c, err := decodeFor[commands.RecordTaskFiles](data, s.cfg.Files != nil, "stores no task files")
	if err != nil {
		return nil, err
	}
	for _, f := range c.Files {
		if err := commands.ValidateFileRef(f); err != nil {
			return nil, err
		}
		if err := s.cfg.Files.Verify(ctx, c.TaskID, f); err != nil {
			if fault.KindOf(err) == fault.KindInternal {
				return nil, fault.Invalid("files", "%v", err)
			}
			return nil, err
		}
	}
	return command[commands.RecordTaskFiles](s, false)(ctx, data)
}

// match previews a criterion over the registered clients.
func (s *Server) match(ctx context.Context, data []byte) (any, error) {
	var r MatchRequest
	if err := decode(data, &r); err != nil {
		return nil, err
	}
	crit, err := commands.CompileCriterion(r.Criterion)
	if err != nil {
		return nil, err
	}
	if err := s.settle(ctx, r.Consistency); err != nil {
		return nil, err
	}
	clients, err := s.views.Clients()
	if err != nil {
		return nil, fault.Internal(err, "read client views")
	}
	out := make([]MatchResult, 0, len(clients))
	for _, c := range clients {
		d := crit.Decide(c.ID, c.Attributes)
		out = append(out, MatchResult{ClientID: c.ID, AttributesSeq: c.AttributesSeq, Reads: crit.Reads(c.ID, c.Attributes), Matched: d.Matched, Error: d.Error})
	}
	return out, nil
}

// checkCredentials compares a task's download username and password with
// what is stored (the password as a bcrypt hash).
func (s *Server) checkCredentials(ctx context.Context, data []byte) (any, error) {
	var r CredentialsRequest
	if err := decode(data, &r); err != nil {
		return nil, err
	}
	v, err := existing(s.views.Task, "task", r.TaskID)
	if err != nil {
		return nil, err
	}
	ok := v.Spec.Username != "" && r.Username == v.Spec.Username && commands.CheckPassword(v.Spec.PasswordHash, r.Password)
	return CredentialsReply{OK: ok}, nil
}
