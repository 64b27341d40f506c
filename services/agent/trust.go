package agent

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flmngr/flmngr/events"
)

// trusted says why an offer may not run when the agent trusts only some
// operators' keys (Config.Trust): it runs what one of them signed, as
// offered (the files it fetches are then checked against the signed
// digests), and nothing else.
func (a *Agent) trusted(o events.Offer) error {
	if len(a.cfg.Trust) == 0 {
		return nil
	}
	if len(o.Signatures) == 0 {
		return fmt.Errorf("refused: task %s is not signed, and this site runs only tasks signed by a key it trusts", o.TaskID)
	}
	var untrusted []string
	for _, s := range o.Signatures {
		if !slices.Contains(a.cfg.Trust, s.PublicKey) {
			untrusted = append(untrusted, s.PublicKey)
			continue
		}
		if err := s.Verify(o); err != nil {
			return fmt.Errorf("refused: task %s: %v", o.TaskID, err)
		}
		return nil
	}
	return fmt.Errorf("refused: task %s is signed only by keys this site does not trust (%s)", o.TaskID, strings.Join(untrusted, ", "))
}
