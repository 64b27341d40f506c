package projections

import (
	"github.com/flmngr/flmngr/commands"
	"github.com/flmngr/flmngr/events"
)

// ClientView is everything known about a client (the original's user
// record plus extra attributes).
type ClientView struct {
	ID string `json:"id"`
	commands.ClientState
	// LastSeq is the stream sequence of the client's last event.
	LastSeq uint64 `json:"last_seq"`
}

// ApplyClient folds one client event into a view. v may be nil for a
// client not seen yet.
func ApplyClient(v *ClientView, e events.Envelope) *ClientView {
	if v == nil {
		v = &ClientView{ID: e.Aggregate.ID}
	} else {
		v.Exists = true // a stored view is of an existing client
	}
	v.ClientState.Apply(e)
	v.LastSeq = e.Seq
	return v
}
