package commands

import (
	"errors"
	"slices"

	"github.com/nats-io/nkeys"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// SignTask records an operator's signature over what a client runs of the
// task as it is now (events.TaskStatement). It is checked here too, so a
// signature made over an older state of the task is refused with the
// reason; a new signature by the same key replaces the old.
type SignTask struct {
	TaskID string `json:"task_id"`
	events.TaskSignature
}

func (c SignTask) Aggregate() events.Aggregate { return events.Task(c.TaskID) }

// maxSignatures bounds the signatures a task keeps.
const maxSignatures = 8

// Statement is what a client runs of the task: the fields of its offers a
// signature covers.
func (s TaskState) Statement(id string) events.Offer {
	return events.Offer{TaskID: id, Host: s.Spec.Host, Port: s.Spec.Port, ClientCommand: s.Spec.ClientCommand,
		ClientArguments: s.Spec.ClientArguments, Files: events.OfferedFiles(s.Spec.FilesPaths, s.Files), Limits: s.Spec.Limits}
}

func (c SignTask) decide(s TaskState) ([]events.Payload, error) {
	if !s.Exists {
		return nil, fault.NotFound("task %s not found", c.TaskID)
	}
	if _, err := nkeys.FromPublicKey(c.PublicKey); err != nil {
		return nil, fault.Invalid("public_key", "public_key must be an NKey public key")
	}
	if err := c.TaskSignature.Verify(s.Statement(c.TaskID)); err != nil {
		if errors.Is(err, events.ErrBadSignature) {
			return nil, fault.Conflict("task %s: the signature does not match the task as it is now (it changed since it was signed): sign it again", c.TaskID)
		}
		return nil, fault.Invalid("signature", "%v", err)
	}
	if slices.Contains(s.Signatures, c.TaskSignature) {
		return nil, nil
	}
	if len(s.Signatures) >= maxSignatures && !slices.ContainsFunc(s.Signatures, func(g events.TaskSignature) bool { return g.PublicKey == c.PublicKey }) {
		return nil, fault.Invalid("public_key", "task %s has %d signatures already", c.TaskID, maxSignatures)
	}
	return []events.Payload{&events.TaskSigned{TaskSignature: c.TaskSignature}}, nil
}

// withSignature adds sig to sigs, replacing one by the same key.
func withSignature(sigs []events.TaskSignature, sig events.TaskSignature) []events.TaskSignature {
	out := slices.DeleteFunc(slices.Clone(sigs), func(g events.TaskSignature) bool { return g.PublicKey == sig.PublicKey })
	return append(out, sig)
}
