package gateway

import (
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

// Task is a task as the REST API returns it: the view without secrets
// and the clients running it now.
type Task struct {
	api.Task
	Clients []string `json:"clients"`
}

// runningBy maps task ids to the clients running them.
func (g *Gateway) runningBy(ctx context.Context) (map[string][]string, error) {
	clients, err := g.api.Users(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, c := range clients {
		for _, r := range c.Running {
			out[r.TaskID] = append(out[r.TaskID], c.ID)
		}
	}
	return out, nil
}

// listTasks answers a page of tasks in creation order (?limit=, at most
// 10,000, default 1,000; ?after= the cursor of the previous page). A
// further page is announced in a Link header (rel="next") and in
// X-Next-Page.
func (g *Gateway) listTasks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := pageLimit(q)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	page, err := g.api.TasksPage(r.Context(), api.ListTasksRequest{TaskFilter: projections.TaskFilter{Status: q.Get("status"), Tag: q.Get("tag")},
		After: q.Get("after"), Limit: limit})
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	ts := page.Tasks
	setNextPage(w, r, page.Next)
	running, err := g.runningBy(r.Context())
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	out := make([]Task, len(ts))
	for i, t := range ts {
		out[i] = Task{Task: t, Clients: orEmpty(running[t.ID])}
	}
	writeJSON(w, http.StatusOK, out)
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (g *Gateway) getTask(w http.ResponseWriter, r *http.Request) {
	t, err := g.api.Task(r.Context(), r.PathValue("id"))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	running, err := g.runningBy(r.Context())
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, Task{Task: t, Clients: orEmpty(running[t.ID])})
}

// reply answers a command with 200 and its events, or 201 for a create.
func (g *Gateway) reply(w http.ResponseWriter, r *http.Request, res api.CommandReply, err error, code int) {
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	writeJSON(w, code, res)
}

func (g *Gateway) createTask(w http.ResponseWriter, r *http.Request) {
	var c commands.CreateTask
	if err := g.decode(w, r, &c); err != nil {
		g.writeError(w, r, err)
		return
	}
	res, err := g.api.CreateTask(r.Context(), c)
	g.reply(w, r, res, err, http.StatusCreated)
}

func (g *Gateway) updateTask(w http.ResponseWriter, r *http.Request) {
	var c commands.UpdateTask
	if err := g.decode(w, r, &c); err != nil {
		g.writeError(w, r, err)
		return
	}
	if c.TaskID != "" && c.TaskID != r.PathValue("id") {
		g.writeError(w, r, fault.Invalid("task_id", "task_id %q does not match the path", c.TaskID))
		return
	}
	c.TaskID = r.PathValue("id")
	res, err := g.api.UpdateTask(r.Context(), c)
	g.reply(w, r, res, err, http.StatusOK)
}

func (g *Gateway) deleteTask(w http.ResponseWriter, r *http.Request) {
	res, err := g.api.DeleteTask(r.Context(), r.PathValue("id"))
	g.reply(w, r, res, err, http.StatusOK)
}

// revokeCapabilities revokes a client's download capabilities for a
// task (the one named by ?id= only, when given).
func (g *Gateway) revokeCapabilities(w http.ResponseWriter, r *http.Request) {
	res, err := g.api.RevokeDownloadCapabilities(r.Context(), commands.RevokeDownloadCapabilities{ClientID: r.PathValue("id"),
		TaskID: r.PathValue("task"), ID: r.URL.Query().Get("id"), Reason: r.URL.Query().Get("reason")})
	g.reply(w, r, res, err, http.StatusOK)
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
	g.reply(w, r, res, err, http.StatusOK)
}

func (g *Gateway) stopTask(w http.ResponseWriter, r *http.Request) {
	res, err := g.api.StopTask(r.Context(), r.PathValue("id"))
	g.reply(w, r, res, err, http.StatusOK)
}

// listFiles answers a task's files by name, paged as the other lists
// (?limit=, ?after= a name); a task holds at most 1,024 files.
func (g *Gateway) listFiles(w http.ResponseWriter, r *http.Request) {
	limit, err := pageLimit(r.URL.Query())
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	t, err := g.api.Task(r.Context(), r.PathValue("id"))
	if err != nil {
		g.writeError(w, r, err)
		return
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
	writeJSON(w, http.StatusOK, orEmptyFiles(fs))
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
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"seq": res.Seq, "files": refs})
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
	id := r.PathValue("id")
	t, err := g.api.Task(r.Context(), id)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	run := r.URL.Query().Get("run")
	if run == "" {
		run = t.Run
	}
	out := []Round{}
	err = g.events.Scan(r.Context(), g.events.EventSubject(events.Task(id), events.TaskRoundCompletedV1), 1, func(e events.Envelope) error {
		if rd := roundOf(e); rd.Run == run {
			out = append(out, rd)
		}
		return nil
	})
	if err != nil {
		g.writeError(w, r, fault.Unavailable(err, "event log"))
		return
	}
	writeJSON(w, http.StatusOK, out)
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
		if err != nil {
			g.writeError(w, r, err)
			return
		}
		if page.Entries == nil {
			page.Entries = []projections.TimelineEntry{}
		}
		writeJSON(w, http.StatusOK, page)
	}
}

// WhyTask is the evaluation of one running task for one client.
type WhyTask struct {
	TaskID    string `json:"task_id"`
	Criterion string `json:"criterion"`
	Matched   bool   `json:"matched"`
	Error     string `json:"error,omitempty"`
}

// listClients answers a page of clients by id (?limit=, ?after=), a
// further page announced as listTasks does.
func (g *Gateway) listClients(w http.ResponseWriter, r *http.Request) {
	limit, err := pageLimit(r.URL.Query())
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	page, err := g.api.UsersPage(r.Context(), api.ListClientsRequest{After: r.URL.Query().Get("after"), Limit: limit})
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	cs := page.Clients
	if cs == nil {
		cs = []projections.ClientView{}
	}
	setNextPage(w, r, page.Next)
	writeJSON(w, http.StatusOK, cs)
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
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	ts, err := g.api.Tasks(r.Context(), api.ListTasksRequest{TaskFilter: projections.TaskFilter{Status: "running"}})
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	why := make([]WhyTask, 0, len(ts))
	for _, t := range ts {
		wt := WhyTask{TaskID: t.ID, Criterion: t.Spec.SelectionCriteria}
		if crit, err := commands.CompileCriterion(t.Spec.SelectionCriteria); err != nil {
			wt.Error = err.Error()
		} else if ok, err := crit.Match(c.ID, c.Attributes); err != nil {
			wt.Error = err.Error()
		} else {
			wt.Matched = ok
		}
		why = append(why, wt)
	}
	writeJSON(w, http.StatusOK, struct {
		projections.ClientView
		Why []WhyTask `json:"why"`
	}{c, why})
}

func (g *Gateway) status(w http.ResponseWriter, r *http.Request) {
	s, err := g.api.Status(r.Context())
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s)
}

func (g *Gateway) match(w http.ResponseWriter, r *http.Request) {
	res, err := g.api.Match(r.Context(), r.URL.Query().Get("criterion"))
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	if res == nil {
		res = []api.MatchResult{}
	}
	writeJSON(w, http.StatusOK, res)
}

func (g *Gateway) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := g.api.Status(r.Context()); err != nil {
		g.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
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
