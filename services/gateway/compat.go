package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path"
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

// The original gateway's endpoints: POST /<rpc name> with the original's
// request bodies and replies (200 and the return value as JSON; 400 or 500
// and the error text as a JSON string), OPTIONS for CORS, POST
// /upload_files and GET /download/<task_id>/<file>.

type rpc struct {
	write  bool
	schema *schema
	call   func(ctx context.Context, g *Gateway, body []byte) (any, error)
}

var rpcs = map[string]*rpc{
	"rpc_exec_create_task":            {write: true, call: rpcOf(rpcCreateTask)},
	"rpc_exec_start_server_task":      {write: true, call: rpcOf(rpcStartTask)},
	"rpc_exec_stop_server_task":       {write: true, call: rpcOf(rpcStopTask)},
	"rpc_exec_update_task":            {write: true, call: rpcOf(rpcUpdateTask)},
	"rpc_exec_update_user_info":       {write: true, call: rpcOf(rpcUpdateUser)},
	"rpc_exec_get_task_by_id":         {call: rpcOf(rpcGetTask)},
	"rpc_exec_client_requesting_task": {call: rpcOf(rpcRequestingTask)},
	"rpc_exec_get_user_info":          {call: rpcOf(rpcGetUser)},
}

// rpcOf makes an rpc of fn: the body, decoded into fn's request, is
// what fn is called with.
func rpcOf[C any](fn func(context.Context, *Gateway, C) (any, error)) func(context.Context, *Gateway, []byte) (any, error) {
	return func(ctx context.Context, g *Gateway, body []byte) (any, error) {
		var c C
		if err := unmarshal(body, &c); err != nil {
			return nil, err
		}
		return fn(ctx, g, c)
	}
}

// taskRef and userRef are the requests that name one task or user.
type taskRef struct {
	TaskID string `json:"task_id"`
}

type userRef struct {
	UserID string `json:"user_id"`
}

func init() {
	schemas, err := loadSchemas(slices.Collect(maps.Keys(rpcs)))
	if err != nil {
		panic("gateway: " + err.Error())
	}
	for name, r := range rpcs {
		r.schema = schemas[name]
	}
}

func (g *Gateway) compatRoutes() {
	g.handle("OPTIONS /{fn}", public, false, g.compatPreflight)
	g.handle("POST /{fn}", public, false, g.compatRPC)
	g.handle("OPTIONS /upload_files", public, false, g.compatPreflight)
	// The upload is authorized by compatUpload itself, so that a refusal
	// carries the CORS headers too.
	g.handle("POST /upload_files", public, true, g.compatUpload)
	g.handle("OPTIONS /download/{task}/{file...}", public, false, g.compatPreflight)
	g.handle("GET /download/{task}/{file...}", public, false, g.compatDownload)
}

func (g *Gateway) compatPreflight(w http.ResponseWriter, r *http.Request) {
	g.legacy.cors(w, r)
	writeJSON(w, http.StatusOK, map[string]string{"message": "CORS preflight response"})
}

// compatAuthorize lets a call of the original's endpoint through: from
// an open network (legacy mode) without a credential, within the legacy
// rate; from anywhere else with the admin token or a console session.
// It answers the refusal itself, in the original's shape, and reports
// whether to go on.
func (g *Gateway) compatAuthorize(w http.ResponseWriter, r *http.Request, endpoint string, level access) bool {
	if g.legacy.allows(r) {
		if ok, retry := g.legacy.limiter.Allow(sourceOf(r)); !ok {
			retryLater(w, http.StatusTooManyRequests, retry, "Too many requests; retry later")
			return false
		}
		g.metrics.LegacyCall(endpoint)
		return true
	}
	if err := g.authorize(r, level); err != nil {
		if fault.KindOf(err) == fault.KindUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="flmngr"`)
		}
		writeJSON(w, status(fault.KindOf(err)), fault.AsError(err).Message)
		return false
	}
	return true
}

func (g *Gateway) compatRPC(w http.ResponseWriter, r *http.Request) {
	g.legacy.cors(w, r)
	name := r.PathValue("fn")
	rp, ok := rpcs[name]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "unknown function " + name})
		return
	}
	level := read
	if rp.write {
		level = write
	}
	if !g.compatAuthorize(w, r, name, level) {
		return
	}
	// Download capabilities go to callers with a credential or on an
	// open network, not to anyone --open-reads lets read.
	ctx := r.Context()
	if g.legacy.allows(r) || g.isAdmin(r) {
		ctx = context.WithValue(ctx, mintKey{}, true)
	}
	r = r.WithContext(ctx)
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, g.cfg.MaxBody))
	var v any
	if err == nil {
		err = json.Unmarshal(body, &v)
	}
	if err != nil || v == nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Invalid or missing JSON body"})
		return
	}
	if msg := rp.schema.check(body); msg != "" {
		writeJSON(w, http.StatusBadRequest, name+" cannot be executed due to invalid arguments: "+msg)
		return
	}
	fields, _ := v.(map[string]any)
	if user, ok := fields["user_id"].(string); ok && (name == "rpc_exec_client_requesting_task" || name == "rpc_exec_update_user_info") {
		if ok, retry := g.limiter.Allow(user); !ok {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(retry/time.Second)+1, 10))
			writeJSON(w, http.StatusTooManyRequests, fmt.Sprintf("%s: user %s calls too often; retry in %s", name, user, retry.Round(time.Millisecond)))
			return
		}
	}
	out, err := rp.call(r.Context(), g, body)
	if err != nil {
		code, text := compatError(name, v, err)
		if code >= 500 {
			g.log.Info("compatible call failed", "rpc", name, "err", err)
		}
		writeJSON(w, code, text)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// compatError turns an error into the original's status and text, so its
// pages, which match on that text, keep working.
func compatError(name string, body any, err error) (int, string) {
	e := fault.AsError(err)
	fields, _ := body.(map[string]any)
	id, _ := fields["task_id"].(string)
	user, _ := fields["user_id"].(string)
	switch e.Kind {
	case fault.KindInvalid:
		return http.StatusBadRequest, name + " cannot be executed due to invalid arguments: " + e.Message
	case fault.KindNotFound:
		switch {
		case name == "rpc_exec_client_requesting_task":
			return http.StatusInternalServerError, "Could not retrieve info from user with ID=" + user
		case user != "":
			return http.StatusInternalServerError, "User with ID=" + user + " not registered"
		}
		return http.StatusInternalServerError, "Task with ID=" + id + " not registered"
	case fault.KindConflict:
		switch {
		case name == "rpc_exec_create_task":
			return http.StatusInternalServerError, "UNIQUE constraint failed: tasks.ID"
		case strings.Contains(e.Message, "upload it first"):
			// The original's words when the task's directory (its server
			// files) is missing; flmngr's detail goes to the log.
			return http.StatusInternalServerError, fmt.Sprintf("Directory 'tasks/task_%s' does not exist.", id)
		case name == "rpc_exec_start_server_task":
			return http.StatusInternalServerError, "Task with ID=" + id + " alredy exists"
		case name == "rpc_exec_stop_server_task":
			return http.StatusInternalServerError, "Task with ID=" + id + " not found"
		}
		return http.StatusInternalServerError, e.Message
	case fault.KindUnavailable:
		return http.StatusServiceUnavailable, e.Message
	case fault.KindUnauthorized, fault.KindForbidden:
		return status(e.Kind), e.Message
	}
	return http.StatusInternalServerError, "Internal error"
}

func unmarshal(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fault.Invalid("", "%v", err)
	}
	return nil
}

// originalName turns a file name as the original's payloads give it,
// "./task_4fe5/client.py", into the clean relative name flmngr keeps,
// "task_4fe5/client.py". Only a leading "./" is taken away (then the name
// is cleaned): the command still refuses whatever is left that is not
// clean or escapes the task directory ("./../x" becomes "../x").
func originalName(name string) string {
	if !strings.HasPrefix(name, "./") {
		return name
	}
	return path.Clean(name)
}

func originalNames(names []string) []string {
	for i, n := range names {
		names[i] = originalName(n)
	}
	return names
}

func rpcCreateTask(ctx context.Context, g *Gateway, c commands.CreateTask) (any, error) {
	c.FilesPaths = originalNames(c.FilesPaths)
	_, err := g.api.CreateTask(ctx, c)
	return nil, err
}

func rpcStartTask(ctx context.Context, g *Gateway, c commands.StartTask) (any, error) {
	_, err := g.api.StartTask(ctx, c)
	return nil, err
}

func rpcStopTask(ctx context.Context, g *Gateway, c commands.StopTask) (any, error) {
	_, err := g.api.StopTask(ctx, c.TaskID)
	return nil, err
}

// rpcUpdateTask is the original update: a missing task_id does nothing.
func rpcUpdateTask(ctx context.Context, g *Gateway, c commands.UpdateTask) (any, error) {
	if c.TaskID == "" {
		return nil, nil
	}
	_, err := g.api.UpdateTask(ctx, c)
	return nil, err
}

// rpcUpdateUser is the original upsert of a user's info.
func rpcUpdateUser(ctx context.Context, g *Gateway, c commands.ReportClientInfo) (any, error) {
	c.Register = true
	_, err := g.api.ReportClient(ctx, c)
	return nil, err
}

// originalDate is the original records' date format.
const originalDate = "2006-01-02 15:04:05"

// OriginalTask is the original task record, without the password.
type OriginalTask struct {
	ID                string   `json:"ID"`
	Host              string   `json:"host"`
	Port              int      `json:"port"`
	Running           bool     `json:"running"`
	SelectionCriteria string   `json:"selection_criteria"`
	ServerArguments   string   `json:"server_arguments"`
	ClientArguments   *string  `json:"client_arguments"`
	Username          string   `json:"username"`
	Tags              []string `json:"tags"`
	FilesPaths        []string `json:"files_paths"`
	CreationDate      string   `json:"creation_date"`
	LastModDate       string   `json:"last_mod_date"`
}

func originalTask(t api.Task) OriginalTask {
	return OriginalTask{ID: t.ID, Host: t.Spec.Host, Port: t.Spec.Port, Running: t.Running,
		SelectionCriteria: t.Spec.SelectionCriteria, ServerArguments: t.Spec.ServerArguments, ClientArguments: t.Spec.ClientArguments,
		Username: t.Spec.Username, Tags: orEmpty(t.Spec.Tags), FilesPaths: orEmpty(t.Spec.FilesPaths),
		CreationDate: t.CreatedAt.Local().Format(originalDate), LastModDate: t.UpdatedAt.Local().Format(originalDate)}
}

func rpcGetTask(ctx context.Context, g *Gateway, c taskRef) (any, error) {
	t, err := g.api.Task(ctx, c.TaskID)
	if err != nil {
		return nil, err
	}
	return originalTask(t), nil
}

// OfferedTask is the original's answer to a client requesting tasks.
// Password is not the task's password, which never leaves the cloud,
// but a download capability minted for the client (null for a caller
// without a credential).
type OfferedTask struct {
	ID              string   `json:"ID"`
	Host            string   `json:"host"`
	Port            int      `json:"port"`
	Tags            []string `json:"tags"`
	ClientArguments *string  `json:"client_arguments"`
	Username        string   `json:"username"`
	Password        *string  `json:"password"`
	FilesPaths      []string `json:"files_paths"`
}

// mintKey marks a request whose offers may carry download capabilities.
type mintKey struct{}

// rpcRequestingTask answers with the running tasks the client is offered,
// in priority order.
func rpcRequestingTask(ctx context.Context, g *Gateway, c userRef) (any, error) {
	u, err := g.api.User(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	out := []OfferedTask{}
	for _, o := range u.Offers {
		t, err := g.api.Task(ctx, o.TaskID)
		if err != nil {
			continue // deleted meanwhile
		}
		ot := OfferedTask{ID: o.TaskID, Host: o.Host, Port: o.Port, Tags: orEmpty(o.Tags), ClientArguments: o.ClientArguments,
			Username: t.Spec.Username, FilesPaths: orEmpty(t.Spec.FilesPaths)}
		if mint, _ := ctx.Value(mintKey{}).(bool); mint {
			secret, err := g.capabilityFor(ctx, u, o)
			if err != nil {
				return nil, err
			}
			if secret != "" {
				ot.Password = &secret
			}
		}
		out = append(out, ot)
	}
	return out, nil
}

// OriginalUser is the original user record.
type OriginalUser struct {
	CreationDate             string   `json:"creation_date"`
	LastModDate              string   `json:"last_mod_date"`
	ID                       string   `json:"ID"`
	DataQnt                  int64    `json:"data_qnt"`
	AvgAccContrib            *float64 `json:"avg_acc_contrib"`
	AvgDisconnectionPerRound *float64 `json:"avg_disconnection_per_round"`
	Sensors                  []string `json:"sensors"`
}

func originalUser(c projections.ClientView) OriginalUser {
	return OriginalUser{CreationDate: c.CreatedAt.Local().Format(originalDate), LastModDate: c.UpdatedAt.Local().Format(originalDate),
		ID: c.ID, DataQnt: c.Attributes.DataQnt, AvgAccContrib: c.Attributes.AvgAccContrib,
		AvgDisconnectionPerRound: c.Attributes.AvgDisconnectionPerRound, Sensors: orEmpty(c.Attributes.Sensors)}
}

func rpcGetUser(ctx context.Context, g *Gateway, c userRef) (any, error) {
	u, err := g.api.User(ctx, c.UserID)
	if err != nil {
		return nil, err
	}
	return originalUser(u), nil
}

// compatUpload is the original file server's POST /upload_files: a
// multipart form with task_id and files. The whole form is read and
// checked first, with the original's messages in the original's order.
func (g *Gateway) compatUpload(w http.ResponseWriter, r *http.Request) {
	g.legacy.cors(w, r)
	if !g.compatAuthorize(w, r, "upload_files", uploading) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Minute)
	defer cancel()
	fail := func(code int, msg string) { writeJSON(w, code, map[string]string{"error": msg}) }
	u, err := readUpload(w, r, "files", g.files.MaxSize(), func(name string) error {
		if strings.ContainsAny(name, "/\\") {
			return fault.Invalid("files", "file name %q has a directory", name)
		}
		return commands.ValidateFileName("files", name)
	})
	var tooBig *http.MaxBytesError
	var refused *uploadError
	switch {
	case errors.As(err, &tooBig):
		fail(http.StatusRequestEntityTooLarge, "Upload too large")
		return
	case errors.As(err, &refused) && refused.malformed:
		fail(http.StatusBadRequest, "Invalid multipart body: "+refused.msg)
		return
	case errors.As(err, &refused):
		fail(http.StatusBadRequest, "Invalid upload: "+refused.msg)
		return
	case err != nil:
		g.writeError(w, r, err)
		return
	}
	defer u.close()
	// As r.FormValue did: the query's task_id first, then the form's.
	id := r.URL.Query().Get("task_id")
	id = cmp.Or(id, u.fields["task_id"])
	switch {
	case id == "":
		fail(http.StatusBadRequest, "Task ID is required")
		return
	case !events.ValidID(id):
		fail(http.StatusBadRequest, "Invalid task ID")
		return
	case len(u.files) == 0 && u.refused == "":
		fail(http.StatusBadRequest, "No files uploaded")
		return
	case u.refused != "":
		fail(http.StatusBadRequest, "Invalid file name: "+u.refused)
		return
	}
	if _, err := g.api.Task(ctx, id); err != nil {
		if fault.KindOf(err) == fault.KindNotFound {
			fail(http.StatusNotFound, "Task not found")
		} else {
			g.writeError(w, r, err)
		}
		return
	}
	refs, _, err := g.storeUpload(ctx, id, u)
	if err != nil {
		g.writeError(w, r, err)
		return
	}
	names := make([]string, len(refs))
	for i, ref := range refs {
		names[i] = ref.Name
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Files uploaded successfully", "files": names})
}
