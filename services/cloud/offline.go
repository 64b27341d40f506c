package cloud

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/flmngr/flmngr/events/eventlog"
	"github.com/flmngr/flmngr/projections/viewstore"
	"github.com/flmngr/flmngr/services/auth"
)

// Stopped is a stopped deployment's data opened for maintenance: its
// JetStream store served in-process only (no one else can connect), with
// full rights, and its views.
type Stopped struct {
	Log   *eventlog.Log
	Views *viewstore.Store
	lock  *dirLock
	ns    *server.Server
	nc    *nats.Conn
}

// OpenStopped opens the data directory of a stopped deployment; it fails
// at once when a cloud runs on it.
func OpenStopped(ctx context.Context, dataDir string) (s *Stopped, err error) {
	s = &Stopped{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.lock, err = lockDir(dataDir); err != nil {
		return nil, err
	}
	trust, err := existingTrust(dataDir)
	if err != nil {
		return nil, err
	}
	s.ns, err = eventlog.StartEmbedded(eventlog.EmbeddedConfig{Dir: dataDir, Listen: "-", Customize: func(o *server.Options) error {
		if trust != nil {
			return trust.Configure(o, jwtDir(dataDir))
		}
		return nil
	}})
	if err != nil {
		return nil, err
	}
	opts := []nats.Option{nats.InProcessServer(s.ns)}
	if trust != nil {
		admin, err := trust.NewUser(auth.RoleAdmin, "flmngr-maintenance")
		if err != nil {
			return nil, err
		}
		opts = append(opts, admin.Option())
	}
	if s.nc, err = nats.Connect("", opts...); err != nil {
		return nil, err
	}
	if s.Log, err = eventlog.Attach(ctx, s.nc, eventlog.Config{}); err != nil {
		return nil, fmt.Errorf("%v (is %s the data directory of a deployment?)", err, dataDir)
	}
	if s.Views, err = viewstore.Open(viewsDir(dataDir), nil); err != nil {
		return nil, fmt.Errorf("views in %s: %w", dataDir, err)
	}
	return s, nil
}

// RebuildStopped drops the views of a stopped deployment and replays
// them from its log; it returns the last sequence applied.
func RebuildStopped(ctx context.Context, dataDir string) (uint64, error) {
	s, err := OpenStopped(ctx, dataDir)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	return s.Views.RebuildOffline(ctx, s.Log)
}

// Conn is the connection to the stopped deployment's store.
func (s *Stopped) Conn() *nats.Conn { return s.nc }

// Close closes the views and the store.
func (s *Stopped) Close() {
	if s.Views != nil {
		_ = s.Views.Close()
	}
	if s.nc != nil {
		s.nc.Close()
	}
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	}
	s.lock.release()
}

// The layout of a data directory besides the JetStream store.
func viewsDir(dataDir string) string { return filepath.Join(dataDir, "views") }
func jwtDir(dataDir string) string   { return filepath.Join(dataDir, "identity", "jwt") }

// OperatorCredsFile is where a cloud writes the operators' credentials
// in its data directory.
func OperatorCredsFile(dataDir string) string { return filepath.Join(dataDir, "operator.creds") }

// existingTrust reads a data directory's trust material, if it has some.
func existingTrust(dataDir string) (*auth.Trust, error) {
	path := auth.KeysFile(dataDir)
	if !fileExists(path) {
		return nil, nil
	}
	t, _, err := auth.LoadOrCreateTrust(path)
	return t, err
}
