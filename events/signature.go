package events

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nkeys"
)

// TaskSignedV1 is the wire name of a task's signature.
const TaskSignedV1 = "task.signed.v1"

func init() {
	register(func() Payload { return &TaskSigned{} })
}

// TaskSignature is an operator's ed25519 signature (an NKey's) over what
// a client runs of a task (TaskStatement), with the key's public half.
// Only whoever holds the key can make it; the cloud stores and forwards
// it.
type TaskSignature struct {
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"` // base64url, no padding
}

// TaskSigned records a signature over the task as it is now; a change of
// the task's spec or files makes it void.
type TaskSigned struct {
	TaskSignature
}

func (*TaskSigned) EventType() string { return TaskSignedV1 }

// statement is what a signature covers: everything a client fetches and
// runs of a task, in a fixed order.
type statement struct {
	Task            string    `json:"task"`
	Host            string    `json:"host"`
	Port            int       `json:"port"`
	ClientCommand   []string  `json:"client_command"`
	ClientArguments *string   `json:"client_arguments"`
	Files           []FileRef `json:"files"`
	// Limits is left out when empty, so that the statements of tasks
	// without limits, and their signatures, are what they were before
	// tasks had limits.
	Limits string `json:"limits,omitempty"`
}

// TaskStatement is the bytes a task's signature covers: the task id, the
// server it connects to, the client command and arguments, every file
// the client fetches with its size and SHA-256, and the resource limits
// it runs under, so that no one but the signer can loosen them (not the
// run, the tags or the criterion, which choose when and where, not what
// runs).
func TaskStatement(o Offer) []byte {
	files := slices.Clone(o.Files)
	slices.SortFunc(files, func(a, b FileRef) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	if files == nil {
		files = []FileRef{}
	}
	b, _ := json.Marshal(statement{Task: o.TaskID, Host: o.Host, Port: o.Port, ClientCommand: o.ClientCommand, ClientArguments: o.ClientArguments, Files: files, Limits: o.Limits})
	return append([]byte("flmngr task statement v1\n"), b...)
}

// StatementDigest is the SHA-256 (hex) of what a signature over o covers
// (TaskStatement): what a site approves when it approves a task.
func StatementDigest(o Offer) string {
	sum := sha256.Sum256(TaskStatement(o))
	return hex.EncodeToString(sum[:])
}

// OfferedFiles are the files a client of a task fetches: those its
// files_paths list (a name never uploaded has no digest), or all of them
// when it lists none.
func OfferedFiles(paths []string, files []FileRef) []FileRef {
	if len(paths) == 0 {
		return append([]FileRef{}, files...)
	}
	out := make([]FileRef, 0, len(paths))
	for _, name := range paths {
		f := FileRef{Name: name}
		if i := slices.IndexFunc(files, func(g FileRef) bool { return g.Name == name }); i >= 0 {
			f = files[i]
		}
		out = append(out, f)
	}
	return out
}

// SignTask signs what a client runs of a task with kp.
func SignTask(kp nkeys.KeyPair, o Offer) (TaskSignature, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return TaskSignature{}, err
	}
	sig, err := kp.Sign(TaskStatement(o))
	if err != nil {
		return TaskSignature{}, err
	}
	return TaskSignature{PublicKey: pub, Signature: base64.RawURLEncoding.EncodeToString(sig)}, nil
}

// ErrBadSignature is returned for a signature that does not verify.
var ErrBadSignature = errors.New("the signature does not verify")

// Verify checks the signature over what a client would run of o.
func (s TaskSignature) Verify(o Offer) error {
	pk, err := nkeys.FromPublicKey(s.PublicKey)
	if err != nil {
		return fmt.Errorf("public key %q: %w", s.PublicKey, err)
	}
	sig, err := base64.RawURLEncoding.DecodeString(s.Signature)
	if err != nil {
		return fmt.Errorf("%w: not base64url", ErrBadSignature)
	}
	if err := pk.Verify(TaskStatement(o), sig); err != nil {
		return fmt.Errorf("%w with key %s (the task changed since it was signed, or it was signed with another key)", ErrBadSignature, s.PublicKey)
	}
	return nil
}
