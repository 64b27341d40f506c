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
	"github.com/flmngr/flmngr/services/api"
	"github.com/flmngr/flmngr/services/files"
)

func taskUpload(args []string, out io.Writer) error {
	fs, cf := newOperatorFlags("task upload", "task upload ID FILE... (FILE or NAME=FILE)",
		"Stores files of a task. Each file is stored under its base name, or under NAME\n"+
			"when given as NAME=FILE (NAME may have directories: models/net.py=./net.py).\n"+
			"The cloud records every file's name, size and SHA-256; clients verify them.")
	signKey := signKeyFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return fmt.Errorf("%w: a task ID and at least one file are required", errUsage)
	}
	id, paths := pos[0], pos[1:]
	var items []api.TaskFile
	sizes := map[string]int64{}
	for _, p := range paths {
		name, path, ok := strings.Cut(p, "=")
		if !ok {
			name, path = filepath.Base(p), p
		}
		if err := commands.ValidateFileName("files", name); err != nil {
			return err
		}
		items = append(items, api.TaskFile{Name: name, Open: func() (io.ReadCloser, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			if fi, err := f.Stat(); err == nil {
				if fi.Size() > files.DefaultMaxSize {
					f.Close()
					return nil, fault.Invalid("files", "%s is %d bytes; the limit is %d", path, fi.Size(), files.DefaultMaxSize)
				}
				sizes[name] = fi.Size()
			}
			return f, nil
		}})
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
	upload := func(ctx context.Context, task, name string, r io.Reader) (events.FileRef, error) {
		var progress func(int64)
		if size := sizes[name]; !cf.json && size > 4*files.PartSize {
			progress = func(n int64) { fmt.Fprintf(out, "\rsending %s: %d%%", name, n*100/size) }
		}
		ref, err := c.UploadFile(ctx, task, name, r, progress)
		if progress != nil {
			fmt.Fprintln(out)
		}
		if err == nil && !cf.json {
			fmt.Fprintf(out, "stored %s (%d bytes)\n", name, ref.Size)
		}
		return ref, err
	}
	refs, r, err := c.StoreTaskFiles(ctx, api.PutFunc(upload), id, items)
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
	fs, cf := newOperatorFlags("match", "match --criterion EXPR", "Shows which registered clients a selection criterion would select right now,\nwithout creating anything.")
	crit := fs.String("criterion", "", `selection criterion, e.g. '"camera" in sensors && data_qnt > 100'`)
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) == 1 && *crit == "" {
		*crit = pos[0]
	} else if len(pos) > 0 {
		return fmt.Errorf("%w: unexpected arguments %q", errUsage, pos)
	}
	return operate(cf, out, func(ctx context.Context, c *api.Client) ([]api.MatchResult, error) { return c.Match(ctx, *crit) }, printMatches)
}

func printMatches(out io.Writer, res []api.MatchResult) error {
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
	_, err := fmt.Fprintf(out, "%d of %d clients selected\n", n, len(res))
	return err
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
