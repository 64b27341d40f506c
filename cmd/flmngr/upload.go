package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/services/files"
)

func taskUpload(args []string, out io.Writer) error {
	fs := newFlags("task upload", "task upload ID FILE... (FILE or NAME=FILE)",
		"Stores files of a task. Each file is stored under its base name, or under NAME\n"+
			"when given as NAME=FILE (NAME may have directories: models/net.py=./net.py).\n"+
			"The cloud records every file's name, size and SHA-256; clients verify them.")
	var cf connFlags
	cf.register(fs)
	signKey := signKeyFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return fmt.Errorf("%w: a task ID and at least one file are required", errUsage)
	}
	id, paths := pos[0], pos[1:]
	type item struct{ name, path string }
	var items []item
	for _, p := range paths {
		name, path, ok := strings.Cut(p, "=")
		if !ok {
			name, path = filepath.Base(p), p
		}
		if err := commands.ValidateFileName("files", name); err != nil {
			return err
		}
		items = append(items, item{name, path})
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout+time.Duration(len(items))*cf.timeout)
	defer cancel()
	if _, err := c.Task(ctx, id); err != nil {
		return err
	}
	var refs []events.FileRef
	for _, it := range items {
		f, err := os.Open(it.path)
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err == nil && fi.Size() > files.DefaultMaxSize {
			f.Close()
			return fault.Invalid("files", "%s is %d bytes; the limit is %d", it.path, fi.Size(), files.DefaultMaxSize)
		}
		var progress func(int64)
		if !cf.json && err == nil && fi.Size() > 4*files.PartSize {
			progress = func(n int64) { fmt.Fprintf(out, "\rsending %s: %d%%", it.name, n*100/fi.Size()) }
		}
		ref, err := c.UploadFile(ctx, id, it.name, f, progress)
		f.Close()
		if progress != nil {
			fmt.Fprintln(out)
		}
		if err != nil {
			return err
		}
		refs = append(refs, ref)
		if !cf.json {
			fmt.Fprintf(out, "stored %s (%d bytes)\n", it.name, ref.Size)
		}
	}
	r, err := c.RecordTaskFiles(ctx, commands.RecordTaskFiles{TaskID: id, Files: refs})
	if err != nil {
		return err
	}
	if err := signIfAsked(ctx, c, id, *signKey, cf.json, out); err != nil {
		return err
	}
	if cf.json {
		return printJSON(out, map[string]any{"seq": r.Seq, "files": refs})
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSIZE\tSHA256")
	for _, f := range refs {
		fmt.Fprintf(w, "%s\t%d\t%s\n", f.Name, f.Size, f.SHA256)
	}
	w.Flush()
	if len(r.Events) == 0 {
		fmt.Fprintf(out, "task %s already had these files\n", id)
	} else {
		fmt.Fprintf(out, "task %s files recorded (event %d)\n", id, r.Seq)
	}
	return nil
}

func runMatch(args []string, out io.Writer) error {
	fs := newFlags("match", "match --criterion EXPR", "Shows which registered clients a selection criterion would select right now,\nwithout creating anything.")
	var cf connFlags
	cf.register(fs)
	crit := fs.String("criterion", "", `selection criterion, e.g. '"camera" in sensors && data_qnt > 100'`)
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) == 1 && *crit == "" {
		*crit = pos[0]
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	c, done, err := cf.client()
	if err != nil {
		return err
	}
	defer done()
	res, err := c.Match(context.Background(), *crit)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(out, res)
	}
	n := 0
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "USER\tSELECTED\tWHY NOT")
	for _, r := range res {
		why := ""
		switch {
		case r.Error != "":
			why = r.Error
		case !r.Matched:
			why = readsText(r.Reads)
		}
		if r.Matched {
			n++
		}
		fmt.Fprintf(w, "%s\t%v\t%s\n", r.ClientID, r.Matched, why)
	}
	w.Flush()
	fmt.Fprintf(out, "%d of %d clients selected\n", n, len(res))
	return nil
}

// readsText shows the attributes a criterion read: sensors=["gps"] data_qnt=5.
func readsText(reads map[string]any) string {
	var parts []string
	for _, k := range sortedKeys(reads) {
		b, _ := json.Marshal(reads[k])
		parts = append(parts, k+"="+string(b))
	}
	if len(parts) == 0 {
		return "the criterion reads no attribute"
	}
	return strings.Join(parts, " ")
}
