package commands

import (
	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// IssueDownloadCapability records a download capability minted for a
// client: the gateway made its secret, gives it to the client only and
// records here its id and SHA-256. The client must be offered the run
// and spec it is for.
type IssueDownloadCapability struct {
	ClientID string `json:"user_id"`
	ID       string `json:"id"`
	TaskID   string `json:"task_id"`
	Run      string `json:"run"`
	SpecSeq  uint64 `json:"spec_seq"`
	SHA256   string `json:"sha256"`
}

// RevokeDownloadCapabilities revokes a client's download capabilities
// for a task, or only the one named by ID.
type RevokeDownloadCapabilities struct {
	ClientID string `json:"user_id"`
	TaskID   string `json:"task_id"`
	ID       string `json:"id,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

func (c IssueDownloadCapability) Aggregate() events.Aggregate { return events.Client(c.ClientID) }
func (c RevokeDownloadCapabilities) Aggregate() events.Aggregate {
	return events.Client(c.ClientID)
}

// validCapabilityID reports whether id is 16-32 lower-case hex digits.
func validCapabilityID(id string) bool { return lowerHex(id, 16, 32) }

// lowerHex reports whether s is min to max lower-case hex digits.
func lowerHex(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (c IssueDownloadCapability) decide(s ClientState) ([]events.Payload, error) {
	if err := validateID("user_id", c.ClientID); err != nil {
		return nil, err
	}
	if err := validateID("task_id", c.TaskID); err != nil {
		return nil, err
	}
	if !validCapabilityID(c.ID) {
		return nil, fault.Invalid("id", "a capability id is 16-32 lower-case hex digits")
	}
	if !lowerHex(c.SHA256, 64, 64) {
		return nil, fault.Invalid("sha256", "sha256 must be 64 lower-case hex digits")
	}
	if !s.Exists {
		return nil, fault.NotFound("client %s not found", c.ClientID)
	}
	o, ok := s.Offered(c.TaskID)
	if !ok || o.Run != c.Run || o.SpecSeq != c.SpecSeq {
		return nil, fault.Conflict("client %s is not offered run %s of task %s (spec %d)", c.ClientID, c.Run, c.TaskID, c.SpecSeq)
	}
	if _, dup := s.Capability(c.TaskID, c.ID); dup {
		return nil, nil
	}
	return []events.Payload{&events.ClientDownloadCapabilityIssued{ID: c.ID, TaskID: c.TaskID, Run: c.Run, SpecSeq: c.SpecSeq, SHA256: c.SHA256}}, nil
}

func (c RevokeDownloadCapabilities) decide(s ClientState) ([]events.Payload, error) {
	if err := validateID("user_id", c.ClientID); err != nil {
		return nil, err
	}
	if err := validateID("task_id", c.TaskID); err != nil {
		return nil, err
	}
	if c.ID != "" && !validCapabilityID(c.ID) {
		return nil, fault.Invalid("id", "a capability id is 16-32 lower-case hex digits")
	}
	if len(c.Reason) > 256 {
		return nil, fault.Invalid("reason", "reason is longer than 256 bytes")
	}
	if !s.Exists {
		return nil, fault.NotFound("client %s not found", c.ClientID)
	}
	live := false
	for _, k := range s.Capabilities {
		live = live || (k.TaskID == c.TaskID && (c.ID == "" || k.ID == c.ID))
	}
	if !live {
		return nil, nil
	}
	return []events.Payload{&events.ClientDownloadCapabilityRevoked{TaskID: c.TaskID, ID: c.ID, Reason: c.Reason}}, nil
}
