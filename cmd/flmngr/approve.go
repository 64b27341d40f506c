package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/agent"
)

// siteFlags name the work directory of a client agent on this device.
type siteFlags struct{ id, workdir *string }

func registerSite(fs *flag.FlagSet) siteFlags {
	return siteFlags{
		id:      fs.String("id", os.Getenv("FLMNGR_CLIENT_ID"), "client ID, to find its default work directory ($FLMNGR_CLIENT_ID)"),
		workdir: fs.String("workdir", "", "the agent's work directory (as given to flmngr client --workdir)"),
	}
}

func (s siteFlags) dir() (string, error) {
	if *s.workdir == "" {
		if *s.id == "" {
			return "", fmt.Errorf("%w: --workdir or --id is required", errUsage)
		}
		return cacheDir("client-" + *s.id), nil
	}
	return filepath.Abs(*s.workdir)
}

// clientApprove approves (or revokes) what the site's agent holds back.
func clientApprove(args []string, out io.Writer) error {
	fs := newFlags("client approve", "client approve TASK [--workdir DIR | --id ID] [--yes] [--revoke]",
		"Approves, on the device, exactly what the agent (started with --approval manual or\n"+
			"trusted) holds back of task TASK: its files with their SHA-256, its command,\n"+
			"arguments and server, as one statement digest. The agent runs it at once; a change\n"+
			"of any of these needs a new approval. --revoke withdraws the approval and stops\n"+
			"the task if it runs.")
	site := registerSite(fs)
	yes := fs.Bool("yes", false, "approve without asking (for scripts)")
	revoke := fs.Bool("revoke", false, "withdraw the task's approval (its run stops)")
	task, err := parseID(fs, args, "task")
	if err != nil {
		return err
	}
	if !events.ValidID(task) {
		return fmt.Errorf("%w: task id %q must be 1-64 letters, digits, '_' or '-'", errUsage, task)
	}
	dir, err := site.dir()
	if err != nil {
		return err
	}
	as, err := agent.ReadApprovals(dir)
	if err != nil {
		return err
	}
	if *revoke {
		if !as.Revoke(task) {
			return fmt.Errorf("task %s has no approval in %s", task, filepath.Join(dir, agent.ApprovalsFile))
		}
		if err := agent.WriteApprovals(dir, as); err != nil {
			return err
		}
		_, err := fmt.Fprintf(out, "revoked the approval of task %s; the agent stops it if it runs\n", task)
		return err
	}
	pending, err := agent.ReadPending(dir)
	if err != nil {
		return err
	}
	var p *agent.Pending
	for i := range pending.Pending {
		if pending.Pending[i].TaskID == task {
			p = &pending.Pending[i]
		}
	}
	if p == nil {
		return fmt.Errorf("task %s is not awaiting approval at this site (flmngr client approvals --workdir %s lists those that are)", task, dir)
	}
	printPending(out, *p)
	if !*yes {
		fmt.Fprint(out, "Approve exactly this? [y/N] ")
		line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return fmt.Errorf("not approved")
		}
	}
	as.Set(agent.Approval{TaskID: task, Statement: p.Statement, Files: p.Files, Signers: p.Signers, At: time.Now().UTC()})
	if err := agent.WriteApprovals(dir, as); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "approved task %s (statement sha256:%s); the agent runs it now\n", task, p.Statement)
	return err
}

// printPending shows what an approval of a held task covers.
func printPending(out io.Writer, p agent.Pending) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(w, "%s\t%v\n", k, v) }
	row("task", p.TaskID)
	row("run", p.Run)
	row("statement", "sha256:"+p.Statement)
	row("server", fmt.Sprintf("%s:%d", p.Host, p.Port))
	if len(p.ClientCommand) > 0 {
		row("client_command", argvText(p.ClientCommand))
	} else {
		row("client_command", "(default: python3 client.py <workdir>)")
	}
	if p.ClientArguments != nil {
		row("client_arguments", quoteEmpty(*p.ClientArguments))
	} else {
		row("client_arguments", "null")
	}
	for _, f := range p.Files {
		row("  file", fmt.Sprintf("%s  %d bytes  sha256:%s", f.Name, f.Size, f.SHA256))
	}
	row("signed_by", dash(strings.Join(p.Signers, ", ")))
	row("waiting_since", p.Since.Local().Format(dateLayout))
	w.Flush()
}

// clientApprovals lists what the site's agent holds back and what the
// site approved.
func clientApprovals(args []string, out io.Writer) error {
	fs := newFlags("client approvals", "client approvals [--workdir DIR | --id ID] [--json]",
		"Lists the tasks the agent on this device holds back for approval and those the\n"+
			"site approved.")
	site := registerSite(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseNone(fs, args); err != nil {
		return err
	}
	dir, err := site.dir()
	if err != nil {
		return err
	}
	pending, err := agent.ReadPending(dir)
	if err != nil {
		return err
	}
	as, err := agent.ReadApprovals(dir)
	if err != nil {
		return err
	}
	if *asJSON {
		if pending.Pending == nil {
			pending.Pending = []agent.Pending{}
		}
		if as.Approvals == nil {
			as.Approvals = []agent.Approval{}
		}
		return printJSON(out, map[string]any{"pending": pending.Pending, "approved": as.Approvals})
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "STATE\tTASK\tRUN\tSTATEMENT\tSIGNED BY\tSINCE")
	for _, p := range pending.Pending {
		fmt.Fprintf(w, "pending\t%s\t%s\tsha256:%s\t%s\t%s\n", p.TaskID, p.Run, p.Statement, dash(strings.Join(p.Signers, ",")), p.Since.Local().Format(dateLayout))
	}
	for _, a := range as.Approvals {
		fmt.Fprintf(w, "approved\t%s\t-\tsha256:%s\t%s\t%s\n", a.TaskID, a.Statement, dash(strings.Join(a.Signers, ",")), a.At.Local().Format(dateLayout))
	}
	return w.Flush()
}
