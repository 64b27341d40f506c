package auth

import (
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
)

// Configure makes an embedded server trust t: it resolves accounts from
// JWTs kept in dir (the "full" resolver of a NATS cluster), where the
// system account is stored and the flmngr account too unless a newer one
// is there already (with the revocations Revoker pushed before).
func (t *Trust) Configure(o *server.Options, dir string) error {
	opJWT, err := t.OperatorJWT()
	if err != nil {
		return err
	}
	oc, err := jwt.DecodeOperatorClaims(opJWT)
	if err != nil {
		return err
	}
	res, err := server.NewDirAccResolver(dir, 0, 2*time.Minute, server.NoDelete)
	if err != nil {
		return fmt.Errorf("account resolver: %w", err)
	}
	sys, err := t.SystemAccountJWT()
	if err != nil {
		return err
	}
	if err := res.Store(t.SystemKey(), sys); err != nil {
		return fmt.Errorf("account resolver: %w", err)
	}
	if have, _ := res.LoadAcc(t.AccountKey()); have == "" {
		acc, err := t.AccountJWT(nil)
		if err != nil {
			return err
		}
		if err := res.Store(t.AccountKey(), acc); err != nil {
			return fmt.Errorf("account resolver: %w", err)
		}
	}
	o.TrustedOperators = []*jwt.OperatorClaims{oc}
	o.SystemAccount = t.SystemKey()
	o.AccountResolver = res
	return nil
}
