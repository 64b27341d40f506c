package agent

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/flmngr/flmngr/events"
)

// Approval modes (Config.Approval).
const (
	// ApprovalAny runs every offered task (that the trust keys allow).
	ApprovalAny = "any"
	// ApprovalManual runs a task only once the site approved its exact
	// statement; with Trust, a task no trusted key signed is still
	// refused outright.
	ApprovalManual = "manual"
	// ApprovalTrusted runs a task a trusted key signed without asking;
	// any other task waits for the site's approval instead of being
	// refused.
	ApprovalTrusted = "trusted"
)

// The files of local approval, in the agent's work directory.
const (
	// ApprovalsFile is what the site approved; the agent watches it.
	ApprovalsFile = "approvals.json"
	// PendingFile is what the agent holds back for approval; it writes
	// it, the site reads it.
	PendingFile = "approvals-pending.json"
)

// maxApprovalsFile bounds what the agent reads of either file.
const maxApprovalsFile = 4 << 20

// Approval is the site's approval of one statement of a task
// (events.StatementDigest): any run of the task that would run exactly
// that statement may run. A changed file, command, argument or server is
// another statement and needs a new approval.
type Approval struct {
	TaskID    string           `json:"task_id"`
	Statement string           `json:"statement_sha256"`
	Files     []events.FileRef `json:"files,omitempty"`
	Signers   []string         `json:"signers,omitempty"`
	At        time.Time        `json:"approved_at"`
}

// Approvals is the approvals file: one approval per task at most.
type Approvals struct {
	Approvals []Approval `json:"approvals"`
}

// Approves reports whether the approvals cover an offer.
func (as Approvals) Approves(o events.Offer) bool {
	d := events.StatementDigest(o)
	return slices.ContainsFunc(as.Approvals, func(a Approval) bool { return a.TaskID == o.TaskID && a.Statement == d })
}

// Set replaces the task's approval with a.
func (as *Approvals) Set(a Approval) {
	as.Revoke(a.TaskID)
	as.Approvals = append(as.Approvals, a)
}

// Revoke drops the task's approval and reports whether there was one.
func (as *Approvals) Revoke(task string) bool {
	n := len(as.Approvals)
	as.Approvals = slices.DeleteFunc(as.Approvals, func(a Approval) bool { return a.TaskID == task })
	return len(as.Approvals) != n
}

// Pending is a task run the agent holds back until the site approves it,
// with everything the statement covers, for the site to judge.
type Pending struct {
	TaskID          string           `json:"task_id"`
	Run             string           `json:"run"`
	SpecSeq         uint64           `json:"spec_seq"`
	Statement       string           `json:"statement_sha256"`
	Host            string           `json:"host"`
	Port            int              `json:"port"`
	ClientCommand   []string         `json:"client_command,omitempty"`
	ClientArguments *string          `json:"client_arguments"`
	Files           []events.FileRef `json:"files"`
	Signers         []string         `json:"signers,omitempty"`
	Since           time.Time        `json:"since"`
}

// PendingList is the pending file.
type PendingList struct {
	Pending []Pending `json:"pending"`
}

// ReadApprovals reads the approvals file of a work directory; a missing
// file approves nothing.
func ReadApprovals(workDir string) (Approvals, error) {
	var as Approvals
	path := filepath.Join(workDir, ApprovalsFile)
	if err := readStrict(path, &as); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Approvals{}, nil
		}
		return Approvals{}, err
	}
	for i, a := range as.Approvals {
		if !events.ValidID(a.TaskID) {
			return Approvals{}, fmt.Errorf("approvals file %s: approval %d: task id %q must be 1-64 letters, digits, '_' or '-'", path, i+1, a.TaskID)
		}
		if b, err := hex.DecodeString(a.Statement); err != nil || len(b) != 32 {
			return Approvals{}, fmt.Errorf("approvals file %s: approval %d (task %s): statement_sha256 must be 64 hex digits", path, i+1, a.TaskID)
		}
	}
	return as, nil
}

// WriteApprovals replaces the approvals file at once (the agent never
// reads half of it).
func WriteApprovals(workDir string, as Approvals) error {
	if as.Approvals == nil {
		as.Approvals = []Approval{}
	}
	return writeAtomic(filepath.Join(workDir, ApprovalsFile), as)
}

// ReadPending reads what the agent of a work directory holds back.
func ReadPending(workDir string) (PendingList, error) {
	var p PendingList
	if err := readStrict(filepath.Join(workDir, PendingFile), &p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return PendingList{}, nil
		}
		return PendingList{}, err
	}
	return p, nil
}

// readStrict decodes one bounded JSON document with no unknown fields.
func readStrict(path string, v any) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxApprovalsFile+1))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxApprovalsFile {
		return fmt.Errorf("%s is larger than %d bytes", path, maxApprovalsFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s is not a valid approvals file (%v): fix or remove it", path, err)
	}
	if dec.More() {
		return fmt.Errorf("%s is not a valid approvals file (data after the JSON object): fix or remove it", path)
	}
	return nil
}

// writeAtomic writes v as JSON to a temporary file beside path and
// renames it over path (mode 0600, owned by the directory's owner when
// root writes it).
func writeAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := ownLikeDir(f, filepath.Dir(path)); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
