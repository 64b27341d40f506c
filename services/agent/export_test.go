package agent

import (
	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/events"
)

// NewSimulated returns a load-test agent over nc: it follows its offers
// without downloading or running anything, and tells onOffers (when not
// nil) about every offers event it applies.
func NewSimulated(nc *nats.Conn, cfg Config, onOffers func(e events.Envelope)) (*Agent, error) {
	cfg.simulate, cfg.onOffers = true, onOffers
	return New(nc, cfg)
}
