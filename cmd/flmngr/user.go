package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/projections"
	"github.com/flmngr/flmngr/services/api"
)

const userUsage = `Usage: flmngr user <register|report|get|list> [flags] [ID]

A user is a client, as in the original: its ID, sensors, amount of data,
accuracy contribution, disconnections per round and extra attributes.

  register ID [--sensors camera,ecu] [--data-qnt N] [--attr k=v ...]
  report ID [--data-qnt N] [--attr k=v ...] [--register]   change the given attributes
  get ID
  list`

func runUser(args []string, out io.Writer) error {
	write := func(sub string) subcommand {
		return subcommand{sub, func(args []string, out io.Writer) error { return userWrite(sub, args, out) }}
	}
	return subcommands(args, out, userUsage, "subcommand", write("register"), write("report"), subcommand{"get", userGet}, subcommand{"list", userList})
}

type infoFlags struct {
	sensors      *listFlag
	dataQnt      *int64
	acc, disconn *float64
	attrs        attrFlag
	fs           *flag.FlagSet
}

func registerInfo(fs *flag.FlagSet) infoFlags {
	f := infoFlags{sensors: &listFlag{}, attrs: attrFlag{}, fs: fs}
	fs.Var(f.sensors, "sensors", "sensors, comma-separated (camera,ecu)")
	f.dataQnt = fs.Int64("data-qnt", 0, "amount of data the client holds")
	f.acc = fs.Float64("avg-acc-contrib", 0, "average accuracy contribution")
	f.disconn = fs.Float64("avg-disconnection-per-round", 0, "average disconnections per round")
	fs.Var(f.attrs, "attr", "extra attribute key=value (repeatable; numbers and booleans keep their type; key= with null removes it)")
	return f
}

func (f infoFlags) info() commands.ClientInfo {
	set := setFlags(f.fs)
	var in commands.ClientInfo
	if set["sensors"] {
		in.Sensors = &f.sensors.values
	}
	if set["data-qnt"] {
		in.DataQnt = f.dataQnt
	}
	if set["avg-acc-contrib"] {
		in.AvgAccContrib = f.acc
	}
	if set["avg-disconnection-per-round"] {
		in.AvgDisconnectionPerRound = f.disconn
	}
	if len(f.attrs) > 0 {
		in.Extra = f.attrs
	}
	return in
}

func userWrite(sub string, args []string, out io.Writer) error {
	about := "Registers a client with its attributes."
	if sub == "report" {
		about = "Reports changed attributes of a client; attributes not given stay as they are."
	}
	fs, cf := newOperatorFlags("user "+sub, "user "+sub+" ID [flags]", about)
	f := registerInfo(fs)
	upsert := fs.Bool("register", false, "register the client if it is unknown (report only)")
	id, err := parseID(fs, args, "user")
	if err != nil {
		return err
	}
	if sub == "register" {
		return operate(cf, out, func(ctx context.Context, c *api.Client) (api.CommandReply, error) {
			return c.RegisterClient(ctx, commands.RegisterClient{ClientID: id, ClientInfo: f.info()})
		}, reported("user "+id+" registered", ""))
	}
	return operate(cf, out, func(ctx context.Context, c *api.Client) (api.CommandReply, error) {
		return c.ReportClient(ctx, commands.ReportClientInfo{ClientID: id, ClientInfo: f.info(), Register: *upsert})
	}, reported("user "+id+" updated", "user "+id+" unchanged"))
}

func userGet(args []string, out io.Writer) error {
	return showOne(args, out, "user get", "Shows one client (user).", "user", (*api.Client).User, printUser)
}

func printUser(out io.Writer, u projections.ClientView) error {
	w, row := fieldTable(out)
	row("ID", u.ID)
	row("online", onlineText(u))
	row("sensors", strings.Join(u.Attributes.Sensors, ", "))
	row("data_qnt", u.Attributes.DataQnt)
	row("avg_acc_contrib", floatOrNull(u.Attributes.AvgAccContrib))
	row("avg_disconnection_per_round", floatOrNull(u.Attributes.AvgDisconnectionPerRound))
	for _, k := range sortedKeys(u.Attributes.Extra) {
		row("attrs."+k, u.Attributes.Extra[k])
	}
	row("running", dash(runningText(u)))
	row("offers", dash(offersText(u)))
	row("quarantined", dash(quarantinedText(u)))
	for _, q := range u.Quarantined {
		if q.Reason != "" {
			row("  "+q.TaskID+"/"+q.Run, q.Reason)
		}
	}
	for _, w := range u.Awaiting {
		row("awaiting_approval", fmt.Sprintf("%s/%s at site %s since %s (statement sha256:%s)", w.TaskID, w.Run, u.ID, w.Since.Local().Format(dateLayout), w.Statement))
	}
	for _, d := range u.Decisions {
		why := "selected"
		switch {
		case d.Error != "":
			why = "not selected: " + d.Error
		case !d.Matched:
			why = "not selected by " + quoteEmpty(d.Criterion)
		}
		row("  task "+d.TaskID, why)
	}
	row("creation_date", u.CreatedAt.Local().Format(dateLayout))
	row("last_mod_date", u.UpdatedAt.Local().Format(dateLayout))
	return w.Flush()
}

// onlineText says whether a client's agent is heard from.
func onlineText(u projections.ClientView) string {
	switch {
	case u.SeenAt.IsZero():
		return "never seen"
	case u.Online:
		return "yes"
	}
	return "no, last seen " + u.SeenAt.Local().Format(dateLayout)
}

func runningText(u projections.ClientView) string {
	var parts []string
	for _, r := range u.Running {
		parts = append(parts, r.TaskID+"/"+r.Run)
	}
	return strings.Join(parts, ",")
}

func offersText(u projections.ClientView) string {
	var parts []string
	for _, o := range u.Offers {
		parts = append(parts, o.TaskID+"/"+o.Run)
	}
	return strings.Join(parts, ",")
}

func quarantinedText(u projections.ClientView) string {
	var parts []string
	for _, q := range u.Quarantined {
		parts = append(parts, q.TaskID+"/"+q.Run)
	}
	return strings.Join(parts, ",")
}

func userList(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("user list", "user list", "Lists clients (users) by ID.")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	return operate(cf, out, func(ctx context.Context, c *api.Client) ([]projections.ClientView, error) {
		us, err := c.Users(ctx)
		if us == nil {
			us = []projections.ClientView{}
		}
		return us, err
	}, printUsers)
}

func printUsers(out io.Writer, us []projections.ClientView) error {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tONLINE\tSENSORS\tDATA_QNT\tEXTRA\tRUNNING\tOFFERS\tQUARANTINED\tLAST MODIFIED")
	for _, u := range us {
		var extra []string
		for _, k := range sortedKeys(u.Attributes.Extra) {
			extra = append(extra, fmt.Sprintf("%s=%v", k, u.Attributes.Extra[k]))
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", u.ID, onlineText(u), dash(strings.Join(u.Attributes.Sensors, ",")), u.Attributes.DataQnt,
			dash(strings.Join(extra, " ")), dash(runningText(u)), dash(offersText(u)), dash(quarantinedText(u)), u.UpdatedAt.Local().Format(dateLayout))
	}
	return w.Flush()
}

func floatOrNull(f *float64) string {
	if f == nil {
		return "null"
	}
	return fmt.Sprint(*f)
}
