package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/taskd"
)

const taskUsage = `Usage: flmngr task <create|get|list|update|delete|upload|start|stop|wait> [flags] [ID]

  create ID --host H --port P [--files a.py,b.py] [--criterion EXPR] ...
  get ID                 show one task
  list [--status S] [--tag T]
  update ID [--port P] [--criterion EXPR] ...   change only the given fields
  delete ID              remove a task that is not running
  upload ID FILE...      store the task's files (server.py, client.py, ...)
  start ID [--arguments "..."]
  stop ID
  wait ID [--run N] [--for D]  wait until the run ends; exit 0 if it finished

Run 'flmngr task <sub> --help' for the flags of each.`

func runTask(args []string, out io.Writer) error {
	lifecycle := func(sub string) subcommand {
		return subcommand{sub, func(args []string, out io.Writer) error { return taskLifecycle(sub, args, out) }}
	}
	return subcommands(args, out, taskUsage, "subcommand", subcommand{"create", taskCreate}, subcommand{"get", taskGet}, subcommand{"list", taskList},
		subcommand{"update", taskUpdate}, lifecycle("delete"), subcommand{"upload", taskUpload}, lifecycle("start"), lifecycle("stop"),
		subcommand{"wait", taskWait}, subcommand{"sign", taskSign})
}

// specFlags are the create-task form of the original, as flags.
type specFlags struct {
	id, host, username, password, criterion, serverArgs, clientArgs, serverCmd, clientCmd, kind, limits *string
	port                                                                                                *int
	files, tags                                                                                         *listFlag
	fs                                                                                                  *flag.FlagSet
}

func registerSpec(fs *flag.FlagSet) *specFlags {
	s := &specFlags{fs: fs,
		id:         fs.String("id", "", "task ID (or the first argument)"),
		host:       fs.String("host", "", "host the task's server listens on"),
		port:       fs.Int("port", 0, "port the task's server listens on (1-65535)"),
		username:   fs.String("username", "", "username for downloading the task's files"),
		password:   fs.String("password", "", "password for downloading the task's files (stored only as a bcrypt hash; or $FLMNGR_TASK_PASSWORD)"),
		criterion:  fs.String("criterion", "", `selection criterion over client attributes, e.g. '"camera" in sensors && data_qnt > 100'`),
		serverArgs: fs.String("server-args", "", "arguments appended to the server command"),
		clientArgs: fs.String("client-args", "", "arguments appended to the client command"),
		serverCmd:  fs.String("server-cmd", "", "server command replacing 'python3 server.py <workdir>', split into words as a shell would (quotes, backslashes; nothing is expanded)"),
		clientCmd:  fs.String("client-cmd", "", "client command replacing 'python3 client.py <workdir>', split into words as a shell would (quotes, backslashes; nothing is expanded)"),
		kind:       fs.String("kind", "", "what the task runs: process (the default: server.py/client.py or the commands) or flower-app (its files are a Flower App, run on a SuperLink and SuperNodes; see docs/flower.md)"),
		limits:     fs.String("limits", "", "resource limits of each client process on its site, e.g. cpu=2,memory=2GiB,pids=256,walltime=2h (a limit left out is none; \"\" on update removes them); a site's --max-limits caps them"),
		files:      &listFlag{},
		tags:       &listFlag{},
	}
	fs.Var(s.files, "files", "files clients download, comma-separated (client.py,task.py)")
	fs.Var(s.tags, "tags", "tags, comma-separated")
	return s
}

// parse parses the flags and returns the task's ID, the flags given, and
// the server and client commands split into words.
func (s *specFlags) parse(args []string) (id string, set map[string]bool, server, client []string, err error) {
	pos, err := parse(s.fs, args)
	if err == nil {
		id, err = taskID(*s.id, pos)
	}
	if err == nil {
		server, client, err = s.commands()
	}
	if err == nil {
		_, err = taskd.ParseLimits(*s.limits)
		if err != nil {
			err = fmt.Errorf("%w: --%v", errUsage, err)
		}
	}
	return id, setFlags(s.fs), server, client, err
}

// commands splits --server-cmd and --client-cmd into words.
func (s *specFlags) commands() (server, client []string, err error) {
	if server, err = commandWords(*s.serverCmd); err != nil {
		return nil, nil, fault.Invalid("server_command", "--server-cmd: %v", err)
	}
	if client, err = commandWords(*s.clientCmd); err != nil {
		return nil, nil, fault.Invalid("client_command", "--client-cmd: %v", err)
	}
	return server, client, nil
}

// taskID takes the ID from --id or the first positional argument.
func taskID(flagID string, pos []string) (string, error) {
	switch {
	case flagID != "" && len(pos) > 0 && pos[0] != flagID:
		return "", fmt.Errorf("%w: task ID given twice (%q and %q)", errUsage, flagID, pos[0])
	case flagID != "":
		return flagID, nil
	case len(pos) == 0:
		return "", fmt.Errorf("%w: a task ID is required", errUsage)
	case len(pos) > 1:
		return "", fmt.Errorf("%w: unexpected arguments %q", errUsage, pos[1:])
	}
	return pos[0], nil
}

func taskCreate(args []string, out io.Writer) error {
	return sendSpec(args, out, "task create", "task create ID --host H --port P [flags]", "Registers a task. Nothing starts until 'flmngr task start'.", "created", false,
		func(ctx context.Context, c *api.Client, a specArgs) (api.CommandReply, error) {
			cmd := commands.CreateTask{
				TaskID: a.id, Host: *a.host, Port: *a.port, Username: *a.username, Password: *a.password,
				FilesPaths: a.files.values, SelectionCriteria: *a.criterion, ServerArguments: *a.serverArgs,
				Tags: a.tags.values, ServerCommand: a.serverCmd, ClientCommand: a.clientCmd, Kind: *a.kind, Limits: *a.limits,
			}
			cmd.Password = cmp.Or(cmd.Password, os.Getenv("FLMNGR_TASK_PASSWORD"))
			if a.set["client-args"] {
				cmd.ClientArguments = a.clientArgs
			}
			return c.CreateTask(ctx, cmd)
		})
}

func taskUpdate(args []string, out io.Writer) error {
	return sendSpec(args, out, "task update", "task update ID [flags]", "Changes the given fields of a task; others stay as they are.", "updated", true,
		func(ctx context.Context, c *api.Client, a specArgs) (api.CommandReply, error) {
			cmd := commands.UpdateTask{TaskID: a.id}
			str := func(name string, v *string) *string {
				if a.set[name] {
					return v
				}
				return nil
			}
			cmd.Host, cmd.Username, cmd.Password = str("host", a.host), str("username", a.username), str("password", a.password)
			cmd.SelectionCriteria, cmd.ServerArguments, cmd.ClientArguments = str("criterion", a.criterion), str("server-args", a.serverArgs), str("client-args", a.clientArgs)
			if a.set["port"] {
				cmd.Port = a.port
			}
			if a.set["files"] {
				cmd.FilesPaths = &a.files.values
			}
			if a.set["tags"] {
				cmd.Tags = &a.tags.values
			}
			if a.set["server-cmd"] {
				cmd.ServerCommand = &a.serverCmd
			}
			if a.set["client-cmd"] {
				cmd.ClientCommand = &a.clientCmd
			}
			cmd.Kind, cmd.Limits = str("kind", a.kind), str("limits", a.limits)
			return c.UpdateTask(ctx, cmd)
		})
}

// specArgs is what task create and update parse: the spec's flags, the
// task's ID, the flags given, and the server and client commands.
type specArgs struct {
	*specFlags
	id                   string
	set                  map[string]bool
	serverCmd, clientCmd []string
}

// sendSpec is task create and update: it parses the spec's flags, sends
// the command that send makes of them and, with --sign-key, signs the
// task; it reports "task ID <did>" (or, when unchanged may be said and
// nothing changed, "task ID unchanged").
func sendSpec(args []string, out io.Writer, name, usage, about, did string, unchanged bool, send func(context.Context, *api.Client, specArgs) (api.CommandReply, error)) error {
	fs, cf := newOperatorFlags(name, usage, about)
	s := registerSpec(fs)
	signKey := signKeyFlag(fs)
	id, set, serverCmd, clientCmd, err := s.parse(args)
	if err != nil {
		return err
	}
	same := ""
	if unchanged {
		same = "task " + id + " unchanged"
	}
	return operate(cf, out, func(ctx context.Context, c *api.Client) (api.CommandReply, error) {
		r, err := send(ctx, c, specArgs{s, id, set, serverCmd, clientCmd})
		if err == nil {
			err = signIfAsked(ctx, c, id, *signKey, cf.json, out)
		}
		return r, err
	}, reported("task "+id+" "+did, same))
}

func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func taskLifecycle(sub string, args []string, out io.Writer) error {
	about := map[string]string{
		"delete": "Removes a task that is not running. Its ID can be registered again.",
		"start":  "Asks the cloud to start a task's server; matching clients are then offered it.",
		"stop":   "Asks the cloud to stop a started task, on the cloud and on every client running it.",
	}
	fs, cf := newOperatorFlags("task "+sub, "task "+sub+" ID", about[sub])
	var arguments *string
	if sub == "start" {
		arguments = fs.String("arguments", "", "server arguments for this run, replacing the task's own")
	}
	id, err := parseID(fs, args, "task")
	if err != nil {
		return err
	}
	verb := map[string]string{"delete": "deleted", "start": "start requested", "stop": "stop requested"}[sub]
	return operate(cf, out, func(ctx context.Context, c *api.Client) (api.CommandReply, error) {
		switch sub {
		case "delete":
			return c.DeleteTask(ctx, id)
		case "stop":
			return c.StopTask(ctx, id)
		}
		cmd := commands.StartTask{TaskID: id}
		if setFlags(fs)["arguments"] {
			cmd.Arguments = arguments
		}
		return c.StartTask(ctx, cmd)
	}, reported("task "+id+" "+verb, ""))
}

func taskGet(args []string, out io.Writer) error {
	return showOne(args, out, "task get", "Shows one task.", "task", taskWithSites, printTask)
}

// taskSites is a task with the sites (clients) that hold its run back
// until they approve it.
type taskSites struct {
	api.Task
	AwaitingApproval []string `json:"awaiting_approval,omitempty"`
}

// taskWithSites reads a task and, while it runs, the sites that hold its
// run back until they approve it.
func taskWithSites(c *api.Client, ctx context.Context, id string) (taskSites, error) {
	t, err := c.Task(ctx, id)
	if err != nil || !t.Running {
		return taskSites{Task: t}, err
	}
	users, err := c.Users(ctx)
	var sites []string
	for _, u := range users {
		if _, ok := u.AwaitingApproval(t.ID, t.Run); ok {
			sites = append(sites, u.ID)
		}
	}
	return taskSites{Task: t, AwaitingApproval: sites}, err
}

// fieldTable writes the text of a get command: a "key  value" row per
// field, aligned once the writer is flushed.
func fieldTable(out io.Writer) (*tabwriter.Writer, func(key string, value any)) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	return w, func(k string, v any) { fmt.Fprintf(w, "%s\t%v\n", k, v) }
}

func printTask(out io.Writer, t taskSites) error {
	w, row := fieldTable(out)
	row("ID", t.ID)
	row("status", t.Status)
	row("running", t.Running)
	row("host", t.Spec.Host)
	row("port", t.Spec.Port)
	if t.Spec.Kind != "" {
		row("kind", t.Spec.Kind)
	}
	row("selection_criteria", quoteEmpty(t.Spec.SelectionCriteria))
	row("server_arguments", quoteEmpty(t.Spec.ServerArguments))
	if t.Spec.ClientArguments != nil {
		row("client_arguments", quoteEmpty(*t.Spec.ClientArguments))
	} else {
		row("client_arguments", "null")
	}
	if len(t.Spec.ServerCommand) > 0 {
		row("server_command", argvText(t.Spec.ServerCommand))
	}
	if len(t.Spec.ClientCommand) > 0 {
		row("client_command", argvText(t.Spec.ClientCommand))
	}
	if t.Spec.Limits != "" {
		row("limits", t.Spec.Limits)
	}
	row("username", t.Spec.Username)
	row("password", map[bool]string{true: "(set, stored hashed)", false: "(none)"}[t.HasPassword])
	row("tags", strings.Join(t.Spec.Tags, ", "))
	row("files_paths", strings.Join(t.Spec.FilesPaths, ", "))
	for _, f := range t.Files {
		row("  file", fmt.Sprintf("%s  %d bytes  sha256:%s", f.Name, f.Size, f.SHA256))
	}
	row("creation_date", t.CreatedAt.Local().Format(dateLayout))
	row("last_mod_date", t.UpdatedAt.Local().Format(dateLayout))
	if t.Run != "" {
		row("run", t.Run)
	}
	if t.Round > 0 {
		row("round", t.Round)
		row("metrics", metricsText(t.Metrics))
	}
	if t.LastError != "" {
		row("last_error", t.LastError)
	}
	for _, site := range t.AwaitingApproval {
		row("awaiting_approval", "at site "+site)
	}
	return w.Flush()
}

// dateLayout is the original's creation_date / last_mod_date format.
const dateLayout = "2006-01-02 15:04:05"

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

func taskList(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("task list", "task list [--status S] [--tag T] [--limit N]", "Lists tasks in creation order, page by page.")
	status := fs.String("status", "", "only tasks in this status (idle, running, start_requested, stop_requested, stopped, finished, errored, interrupted)")
	tag := fs.String("tag", "", "only tasks with this tag")
	limit := fs.Int("limit", 0, "list at most this many tasks (0: all)")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	if cf.json {
		fmt.Fprint(out, "[")
	} else {
		fmt.Fprintln(w, "ID\tSTATUS\tRUNNING\tADDRESS\tCRITERION\tTAGS\tRUN\tLAST MODIFIED")
	}
	n := 0
	req := api.ListTasksRequest{TaskFilter: projections.TaskFilter{Status: *status, Tag: *tag}}
	for {
		if *limit > 0 {
			req.Limit = min(*limit-n, projections.DefaultPage)
		}
		page, err := c.TasksPage(context.Background(), req)
		if err != nil {
			return err
		}
		for _, t := range page.Tasks {
			if cf.json {
				b, err := json.MarshalIndent(t, "  ", "  ")
				if err != nil {
					return err
				}
				sep := ",\n  "
				if n == 0 {
					sep = "\n  "
				}
				fmt.Fprint(out, sep+string(b))
			} else {
				fmt.Fprintf(w, "%s\t%s\t%v\t%s:%d\t%s\t%s\t%s\t%s\n", t.ID, t.Status, t.Running, t.Spec.Host, t.Spec.Port,
					quoteEmpty(t.Spec.SelectionCriteria), strings.Join(t.Spec.Tags, ","), dash(t.Run), t.UpdatedAt.Local().Format(dateLayout))
			}
			n++
		}
		if !cf.json {
			// A long list shows as it comes, page by page.
			if err := w.Flush(); err != nil {
				return err
			}
		}
		if page.Next == "" || (*limit > 0 && n >= *limit) {
			break
		}
		req.After = page.Next
	}
	if cf.json {
		if n > 0 {
			fmt.Fprint(out, "\n")
		}
		fmt.Fprintln(out, "]")
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// argvText shows a command as the argv it runs: ["sh", "-c", "echo hi"].
func argvText(argv []string) string {
	b, _ := json.Marshal(argv)
	return strings.ReplaceAll(string(b), `","`, `", "`)
}

// metricsText shows a round's metrics by name: accuracy 0.9181 loss 0.2943.
func metricsText(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %.4f", k, m[k]))
	}
	return strings.Join(parts, " ")
}
