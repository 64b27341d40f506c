package commands

import (
	"maps"
	"slices"

	"github.com/flmngr/flmngr/commands/fault"
	"github.com/flmngr/flmngr/events"
)

// ClientInfo is what a client reports about itself. In a report, nil fields
// are left as they are; Sensors replaces the whole list; an Extra key with
// a null value removes that attribute.
type ClientInfo struct {
	Sensors                  *[]string      `json:"sensors,omitempty"`
	DataQnt                  *int64         `json:"data_qnt,omitempty"`
	AvgAccContrib            *float64       `json:"avg_acc_contrib,omitempty"`
	AvgDisconnectionPerRound *float64       `json:"avg_disconnection_per_round,omitempty"`
	Extra                    map[string]any `json:"extra,omitempty"`
}

// RegisterClient registers a new client with its first attributes.
type RegisterClient struct {
	ClientID string `json:"user_id"`
	ClientInfo
}

// ReportClientInfo updates a client's attributes. With Register set, an
// unknown client is registered instead of being an error (the original's
// rpc_exec_update_user_info upsert).
type ReportClientInfo struct {
	ClientID string `json:"user_id"`
	ClientInfo
	Register bool `json:"register,omitempty"`
}

func (c RegisterClient) Aggregate() events.Aggregate   { return events.Client(c.ClientID) }
func (c ReportClientInfo) Aggregate() events.Aggregate { return events.Client(c.ClientID) }

func (i ClientInfo) validate() error {
	if i.Sensors != nil {
		if err := validateSensors(*i.Sensors); err != nil {
			return err
		}
	}
	if i.DataQnt != nil && *i.DataQnt < 0 {
		return fault.Invalid("data_qnt", "data_qnt must not be negative, got %d", *i.DataQnt)
	}
	if err := validateRatio("avg_acc_contrib", i.AvgAccContrib); err != nil {
		return err
	}
	if err := validateRatio("avg_disconnection_per_round", i.AvgDisconnectionPerRound); err != nil {
		return err
	}
	return validateExtra(i.Extra)
}

// merge applies the info onto attributes and returns the result.
func (i ClientInfo) merge(a events.ClientAttributes) events.ClientAttributes {
	if i.Sensors != nil {
		a.Sensors = slices.Clone(*i.Sensors)
	}
	if a.Sensors == nil {
		a.Sensors = []string{}
	}
	set(&a.DataQnt, i.DataQnt)
	if i.AvgAccContrib != nil {
		a.AvgAccContrib = i.AvgAccContrib
	}
	if i.AvgDisconnectionPerRound != nil {
		a.AvgDisconnectionPerRound = i.AvgDisconnectionPerRound
	}
	if len(i.Extra) > 0 {
		extra := maps.Clone(a.Extra)
		if extra == nil {
			extra = map[string]any{}
		}
		for k, v := range i.Extra {
			if v == nil {
				delete(extra, k)
			} else {
				extra[k] = v
			}
		}
		a.Extra = extra
	}
	if len(a.Extra) == 0 {
		a.Extra = nil
	}
	return a
}

func attributeChanges(a, b events.ClientAttributes) []string {
	var out []string
	add := func(name string, differ bool) {
		if differ {
			out = append(out, name)
		}
	}
	add("sensors", !slices.Equal(a.Sensors, b.Sensors))
	add("data_qnt", a.DataQnt != b.DataQnt)
	add("avg_acc_contrib", !equalPtr(a.AvgAccContrib, b.AvgAccContrib))
	add("avg_disconnection_per_round", !equalPtr(a.AvgDisconnectionPerRound, b.AvgDisconnectionPerRound))
	add("extra", !maps.Equal(a.Extra, b.Extra))
	return out
}

func (c RegisterClient) decide(s ClientState) ([]events.Payload, error) {
	if err := validateID("user_id", c.ClientID); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if s.Exists {
		return nil, fault.Conflict("client %s is already registered", c.ClientID)
	}
	return []events.Payload{&events.ClientRegistered{Attributes: c.merge(events.ClientAttributes{})}}, nil
}

func (c ReportClientInfo) decide(s ClientState) ([]events.Payload, error) {
	if err := validateID("user_id", c.ClientID); err != nil {
		return nil, err
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	if !s.Exists {
		if !c.Register {
			return nil, fault.NotFound("client %s not found", c.ClientID)
		}
		return []events.Payload{&events.ClientRegistered{Attributes: c.merge(events.ClientAttributes{})}}, nil
	}
	next := c.merge(s.Attributes)
	changed := attributeChanges(s.Attributes, next)
	if len(changed) == 0 {
		return nil, nil
	}
	return []events.Payload{&events.ClientInfoReported{Attributes: next, Changed: changed}}, nil
}
