package gateway

import (
	"cmp"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/api"
)

func (g *Gateway) routes() {
	g.handle("GET /api/v1/tasks", read, false, g.listTasks)
	g.handle("POST /api/v1/tasks", write, false, g.createTask)
	g.handle("GET /api/v1/tasks/{id}", read, false, g.getTask)
	g.handle("PATCH /api/v1/tasks/{id}", write, false, g.updateTask)
	g.handle("DELETE /api/v1/tasks/{id}", write, false, g.deleteTask)
	g.handle("POST /api/v1/tasks/{id}/start", write, false, g.startTask)
	g.handle("POST /api/v1/tasks/{id}/stop", write, false, g.stopTask)
	g.handle("GET /api/v1/tasks/{id}/files", read, false, g.listFiles)
	g.handle("POST /api/v1/tasks/{id}/files", uploading, true, g.uploadFiles)
	g.handle("GET /api/v1/tasks/{id}/metrics", read, false, g.taskMetrics)
	g.handle("GET /api/v1/tasks/{id}/timeline", read, false, g.timelineOf(func(r *http.Request) projections.TimelineQuery {
		return projections.TimelineQuery{Task: r.PathValue("id")}
	}))
	g.handle("GET /api/v1/tasks/{id}/metrics/stream", read, true, g.metricsStream)
	g.handle("GET /api/v1/tasks/{id}/logs/stream", read, true, g.logsStream)
	g.handle("GET /api/v1/clients", read, false, g.listClients)
	g.handle("GET /api/v1/clients/{id}", read, false, g.getClient)
	g.handle("DELETE /api/v1/clients/{id}/capabilities/{task}", write, false, g.revokeCapabilities)
	g.handle("GET /api/v1/clients/{id}/timeline", read, false, g.timelineOf(func(r *http.Request) projections.TimelineQuery {
		return projections.TimelineQuery{Client: r.PathValue("id")}
	}))
	g.handle("GET /api/v1/timeline", read, false, g.timelineOf(func(r *http.Request) projections.TimelineQuery {
		return projections.TimelineQuery{Task: r.URL.Query().Get("task"), Client: r.URL.Query().Get("client")}
	}))
	g.handle("GET /api/v1/events/stream", read, true, g.eventsStream)
	g.handle("GET /api/v1/status", read, false, g.status)
	g.handle("GET /api/v1/match", read, false, g.match)
	g.handle("POST /api/v1/login", public, false, g.login)
	g.handle("POST /api/v1/logout", public, false, g.logout)
	g.handle("GET /api/v1/whoami", public, false, g.whoami)
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		g.handle(m+" /api/", public, false, func(w http.ResponseWriter, r *http.Request) {
			g.writeError(w, r, fault.NotFound("no such endpoint: %s %s", r.Method, r.URL.Path))
		})
	}
	g.handle("GET /healthz", public, false, g.healthz)
	g.handle("GET /metrics", read, false, g.metrics.Handler().ServeHTTP)
	g.compatRoutes()
	g.consoleRoutes()
}

// Task is a task as the REST API returns it: the view without secrets,
// the clients running it now and the sites (clients) that hold it back
// until they approve it.
type Task struct {
	api.Task
	Clients          []string `json:"clients"`
	AwaitingApproval []string `json:"awaiting_approval"`
}

// taskClients are, by task id, the clients running each task and those
// awaiting their site's approval of it.
type taskClients struct{ running, awaiting map[string][]string }

func (tc taskClients) of(t api.Task) Task {
	return Task{Task: t, Clients: orEmpty(tc.running[t.ID]), AwaitingApproval: orEmpty(tc.awaiting[t.ID])}
}

// runningBy maps task ids to the clients running them and those awaiting
// approval.
func (g *Gateway) runningBy(ctx context.Context) (taskClients, error) {
	clients, err := g.api.Users(ctx)
	if err != nil {
		return taskClients{}, err
	}
	out := taskClients{running: map[string][]string{}, awaiting: map[string][]string{}}
	for _, c := range clients {
		for _, r := range c.Running {
			out.running[r.TaskID] = append(out.running[r.TaskID], c.ID)
		}
		for _, w := range c.Awaiting {
			out.awaiting[w.TaskID] = append(out.awaiting[w.TaskID], c.ID)
		}
	}
	return out, nil
}

// listTasks answers a page of tasks in creation order (?limit=, at most
// 10,000, default 1,000; ?after= the cursor of the previous page). A
// further page is announced in a Link header (rel="next") and in
// X-Next-Page.
func (g *Gateway) listTasks(w http.ResponseWriter, r *http.Request) {
	out, err := g.tasksPage(w, r)
	g.answer(w, r, http.StatusOK, out, err)
}

func (g *Gateway) tasksPage(w http.ResponseWriter, r *http.Request) ([]Task, error) {
	q := r.URL.Query()
	limit, err := pageLimit(q)
	if err != nil {
		return nil, err
	}
	page, err := g.api.TasksPage(r.Context(), api.ListTasksRequest{TaskFilter: projections.TaskFilter{Status: q.Get("status"), Tag: q.Get("tag")},
		After: q.Get("after"), Limit: limit})
	if err != nil {
		return nil, err
	}
	setNextPage(w, r, page.Next)
	running, err := g.runningBy(r.Context())
	if err != nil {
		return nil, err
	}
	out := make([]Task, len(page.Tasks))
	for i, t := range page.Tasks {
		out[i] = running.of(t)
	}
	return out, nil
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (g *Gateway) getTask(w http.ResponseWriter, r *http.Request) {
	t, err := g.api.Task(r.Context(), r.PathValue("id"))
	var running taskClients
	if err == nil {
		running, err = g.runningBy(r.Context())
	}
	g.answer(w, r, http.StatusOK, running.of(t), err)
}

// answer writes what a handler's one call returned: v as JSON with
// code, or the error.
func (g *Gateway) answer(w http.ResponseWriter, r *http.Request, code int, v any, err error) {
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	writeJSON(w, code, v)
}

// decoded decodes a request's JSON body into a command, lets prepare
// complete it (when set) and answers the one call made with it, with
// code.
func decoded[C any](g *Gateway, w http.ResponseWriter, r *http.Request, code int, call func(context.Context, C) (api.CommandReply, error), prepare func(*C) error) {
	var c C
	err := g.decode(w, r, &c)
	if err == nil && prepare != nil {
		err = prepare(&c)
	}
	var res api.CommandReply
	if err == nil {
		res, err = call(r.Context(), c)
	}
	g.answer(w, r, code, res, err)
}

func (g *Gateway) createTask(w http.ResponseWriter, r *http.Request) {
	decoded(g, w, r, http.StatusCreated, g.api.CreateTask, nil)
}

func (g *Gateway) updateTask(w http.ResponseWriter, r *http.Request) {
	decoded(g, w, r, http.StatusOK, g.api.UpdateTask, func(c *commands.UpdateTask) error {
		if c.TaskID != "" && c.TaskID != r.PathValue("id") {
			return fault.Invalid("task_id", "task_id %q does not match the path", c.TaskID)
		}
		c.TaskID = r.PathValue("id")
		return nil
	})
}

func (g *Gateway) deleteTask(w http.ResponseWriter, r *http.Request) {
	res, err := g.api.DeleteTask(r.Context(), r.PathValue("id"))
	g.answer(w, r, http.StatusOK, res, err)
}

// revokeCapabilities revokes a client's download capabilities for a
// task (the one named by ?id= only, when given).
func (g *Gateway) revokeCapabilities(w http.ResponseWriter, r *http.Request) {
	res, err := g.api.RevokeDownloadCapabilities(r.Context(), commands.RevokeDownloadCapabilities{ClientID: r.PathValue("id"),
		TaskID: r.PathValue("task"), ID: r.URL.Query().Get("id"), Reason: r.URL.Query().Get("reason")})
	g.answer(w, r, http.StatusOK, res, err)
}

func (g *Gateway) startTask(w http.ResponseWriter, r *http.Request) {
	c := commands.StartTask{TaskID: r.PathValue("id")}
	if r.ContentLength != 0 {
		var body struct {
			Arguments *string `json:"arguments"`
		}
		if err := g.decode(w, r, &body); err != nil && !errors.Is(err, io.EOF) {
			g.writeError(w, r, err)
			return
		}
		c.Arguments = body.Arguments
	}
	res, err := g.api.StartTask(r.Context(), c)
	g.answer(w, r, http.StatusOK, res, err)
}

func (g *Gateway) stopTask(w http.ResponseWriter, r *http.Request) {
	res, err := g.api.StopTask(r.Context(), r.PathValue("id"))
	g.answer(w, r, http.StatusOK, res, err)
}

// listFiles answers a task's files by name, paged as the other lists
// (?limit=, ?after= a name); a task holds at most 1,024 files.
func (g *Gateway) listFiles(w http.ResponseWriter, r *http.Request) {
	fs, err := g.filesPage(w, r)
	g.answer(w, r, http.StatusOK, orEmptyFiles(fs), err)
}

func (g *Gateway) filesPage(w http.ResponseWriter, r *http.Request) ([]events.FileRef, error) {
	limit, err := pageLimit(r.URL.Query())
	if err != nil {
		return nil, err
	}
	t, err := g.api.Task(r.Context(), r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	fs := slices.SortedFunc(slices.Values(t.Files), func(a, b events.FileRef) int { return strings.Compare(a.Name, b.Name) })
	if after := r.URL.Query().Get("after"); after != "" {
		i, _ := slices.BinarySearchFunc(fs, after, func(f events.FileRef, name string) int { return strings.Compare(f.Name, name) })
		for i < len(fs) && fs[i].Name <= after {
			i++
		}
		fs = fs[i:]
	}
	if limit > 0 && len(fs) > limit {
		fs = fs[:limit]
		setNextPage(w, r, fs[limit-1].Name)
	}
	return fs, nil
}

func orEmptyFiles(f []events.FileRef) []events.FileRef {
	if f == nil {
		return []events.FileRef{}
	}
	return f
}

// uploadFiles stores the parts named "files" of a multipart form and
// records them; the whole form is read and checked first.
func (g *Gateway) uploadFiles(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	id := r.PathValue("id")
	if _, err := g.api.Task(ctx, id); err != nil {
		g.writeError(w, r, err)
		return
	}
	u, err := readUpload(w, r, "files", g.files.MaxSize(), func(name string) error { return commands.ValidateFileName("files", name) })
	var refused *uploadError
	switch {
	case errors.As(err, &refused):
		g.writeError(w, r, fault.Invalid("files", "%s", refused.msg))
		return
	case err != nil:
		g.writeError(w, r, err)
		return
	}
	defer u.close()
	if u.refusedWhy != nil {
		g.writeError(w, r, u.refusedWhy)
		return
	}
	if len(u.files) == 0 {
		g.writeError(w, r, fault.Invalid("files", "no files uploaded"))
		return
	}
	refs, res, err := g.storeUpload(ctx, id, u)
	g.answer(w, r, http.StatusOK, map[string]any{"seq": res.Seq, "files": refs}, err)
}

// Round is one completed round of a run.
type Round struct {
	Seq     uint64             `json:"seq"`
	Time    time.Time          `json:"time"`
	Run     string             `json:"run"`
	Round   int                `json:"round"`
	Metrics map[string]float64 `json:"metrics"`
	Raw     map[string]string  `json:"raw,omitempty"`
}

func roundOf(e events.Envelope) Round {
	p := e.Event.(*events.TaskRoundCompleted)
	return Round{Seq: e.Seq, Time: e.Time, Run: p.Run, Round: p.Round, Metrics: p.Metrics, Raw: p.Raw}
}

// taskMetrics lists the rounds of a run (?run=, default the current one).
func (g *Gateway) taskMetrics(w http.ResponseWriter, r *http.Request) {
	out, err := g.rounds(r.Context(), r.PathValue("id"), r.URL.Query().Get("run"))
	g.answer(w, r, http.StatusOK, out, err)
}

// rounds are the completed rounds of a run (default the task's current
// one).
func (g *Gateway) rounds(ctx context.Context, id, run string) ([]Round, error) {
	t, err := g.api.Task(ctx, id)
	if err != nil {
		return nil, err
	}
	run = cmp.Or(run, t.Run)
	out := []Round{}
	err = g.events.Scan(ctx, g.events.EventSubject(events.Task(id), events.TaskRoundCompletedV1), 1, func(e events.Envelope) error {
		if rd := roundOf(e); rd.Run == run {
			out = append(out, rd)
		}
		return nil
	})
	if err != nil {
		return nil, fault.Unavailable(err, "event log")
	}
	return out, nil
}

func (g *Gateway) timelineOf(query func(*http.Request) projections.TimelineQuery) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := query(r)
		v := r.URL.Query()
		var err error
		if s := v.Get("after"); s != "" {
			if q.After, err = strconv.ParseUint(s, 10, 64); err != nil {
				g.writeError(w, r, fault.Invalid("after", "after must be a sequence number"))
				return
			}
		}
		if s := v.Get("limit"); s != "" {
			if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 {
				g.writeError(w, r, fault.Invalid("limit", "limit must be a positive number"))
				return
			}
		}
		page, err := g.api.Timeline(r.Context(), api.TimelineRequest{TimelineQuery: q})
		if page.Entries == nil {
			page.Entries = []projections.TimelineEntry{}
		}
		g.answer(w, r, http.StatusOK, page, err)
	}
}

// listClients answers a page of clients by id (?limit=, ?after=), a
// further page announced as listTasks does.
func (g *Gateway) listClients(w http.ResponseWriter, r *http.Request) {
	limit, err := pageLimit(r.URL.Query())
	var page api.ClientsPage
	if err == nil {
		page, err = g.api.UsersPage(r.Context(), api.ListClientsRequest{After: r.URL.Query().Get("after"), Limit: limit})
	}
	if page.Clients == nil {
		page.Clients = []projections.ClientView{}
	}
	if err == nil {
		setNextPage(w, r, page.Next)
	}
	g.answer(w, r, http.StatusOK, page.Clients, err)
}

// pageLimit reads ?limit= (0: the default page).
func pageLimit(q url.Values) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > projections.MaxPage {
		return 0, fault.Invalid("limit", "limit must be 1 to %d", projections.MaxPage)
	}
	return n, nil
}

// setNextPage announces the next page of a list, if there is one.
func setNextPage(w http.ResponseWriter, r *http.Request, next string) {
	if next == "" {
		return
	}
	q := r.URL.Query()
	q.Set("after", next)
	w.Header().Set("X-Next-Page", next)
	w.Header().Set("Link", "<"+r.URL.Path+"?"+q.Encode()+`>; rel="next"`)
}

func (g *Gateway) getClient(w http.ResponseWriter, r *http.Request) {
	c, err := g.api.User(r.Context(), r.PathValue("id"))
	// Why each active task is or is not offered: the matcher's decisions.
	why := c.Decisions
	if why == nil {
		why = []events.Decision{}
	}
	g.answer(w, r, http.StatusOK, struct {
		projections.ClientView
		Why []events.Decision `json:"why"`
	}{c, why}, err)
}

func (g *Gateway) status(w http.ResponseWriter, r *http.Request) {
	s, err := g.api.Status(r.Context())
	g.answer(w, r, http.StatusOK, s, err)
}

func (g *Gateway) match(w http.ResponseWriter, r *http.Request) {
	res, err := g.api.Match(r.Context(), r.URL.Query().Get("criterion"))
	if res == nil {
		res = []api.MatchResult{}
	}
	g.answer(w, r, http.StatusOK, res, err)
}

func (g *Gateway) healthz(w http.ResponseWriter, r *http.Request) {
	_, err := g.api.Status(r.Context())
	g.answer(w, r, http.StatusOK, map[string]string{"status": "ok"}, err)
}

// rawFileName is the file name a multipart part was sent with. Go's own
// accessors keep only its last element; flmngr checks the whole name
// instead, so that "../x" is refused rather than quietly renamed and a
// name with directories ("models/net.py") keeps them.
func rawFileName(h textproto.MIMEHeader) string {
	_, params, err := mime.ParseMediaType(h.Get("Content-Disposition"))
	if err != nil {
		return ""
	}
	return params["filename"]
}
