package flowerapp

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// AdmittedDir, under the cloud's state directory of a task, holds one
// file per client whose SuperNode the SuperLink admits: <client>.pub, its
// public key. The cloud writes it (the clients the criterion selects that
// reported a key for the run); the SuperLink driver registers those keys
// with `flwr supernode register` and unregisters the others.
const AdmittedDir = "supernodes"

// Admit lets client's SuperNode, with public key key, into the run.
func Admit(state, client, key string) error {
	dir := filepath.Join(state, AdmittedDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	path := filepath.Join(dir, client+".pub")
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == key {
		return nil
	}
	return writeFile(path, []byte(key+"\n"), 0o644)
}

// Revoke takes client's SuperNode out of the run.
func Revoke(state, client string) error {
	err := os.Remove(filepath.Join(state, AdmittedDir, client+".pub"))
	if os.IsNotExist(err) {
		return nil
	}
	return err
}

// RevokeAll takes every SuperNode out of the run.
func RevokeAll(state string) error {
	return os.RemoveAll(filepath.Join(state, AdmittedDir))
}

// admitted reads the admitted keys, by client.
func admitted(state string) map[string]string {
	out := map[string]string{}
	entries, _ := os.ReadDir(filepath.Join(state, AdmittedDir))
	for _, e := range entries {
		client, ok := strings.CutSuffix(e.Name(), ".pub")
		if !ok || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(state, AdmittedDir, e.Name()))
		if err != nil {
			continue
		}
		if key := strings.TrimSpace(string(b)); key != "" {
			out[client] = key
		}
	}
	return out
}

// registered is a SuperNode registered with the SuperLink.
type registered struct {
	key, node string
}

// members keeps the SuperLink's registered SuperNodes equal to the
// admitted ones. A key that cannot be registered is tried again after a
// growing wait.
type members struct {
	cli    CLI
	state  string
	report *Reporter
	log    io.Writer
	nodes  map[string]registered // by client
	retry  map[string]time.Time  // client → not before
	wait   map[string]time.Duration
}

func newMembers(cli CLI, state string, report *Reporter, log io.Writer) *members {
	return &members{cli: cli, state: state, report: report, log: log,
		nodes: map[string]registered{}, retry: map[string]time.Time{}, wait: map[string]time.Duration{}}
}

// run syncs every interval until ctx ends.
func (m *members) run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		m.sync(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// sync unregisters the SuperNodes no longer admitted (or admitted with
// another key), then registers the admitted ones not yet registered.
func (m *members) sync(ctx context.Context) {
	want := admitted(m.state)
	for _, client := range sortedKeys(m.nodes) {
		n := m.nodes[client]
		if want[client] == n.key || ctx.Err() != nil {
			continue
		}
		if err := m.cli.Unregister(ctx, n.node); err != nil {
			fmt.Fprintf(m.log, "%v\n", err)
			continue
		}
		delete(m.nodes, client)
		m.report.Step("supernode_unregistered", fmt.Sprintf("client %s node %s", client, n.node))
	}
	// Registrations run side by side: each is a flwr process that takes
	// seconds to start.
	type result struct {
		client, key, node string
		err               error
	}
	var todo []string
	for _, client := range sortedKeys(want) {
		if _, ok := m.nodes[client]; !ok && ctx.Err() == nil && !time.Now().Before(m.retry[client]) {
			todo = append(todo, client)
		}
	}
	results := make([]result, len(todo))
	sem := make(chan struct{}, registerAtOnce)
	var wg sync.WaitGroup
	for i, client := range todo {
		results[i] = result{client: client, key: want[client]}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			r := &results[i]
			// The key as read: the cloud may replace the file meanwhile.
			file := filepath.Join(m.state, "register-"+client+".pub")
			if r.err = writeFile(file, []byte(r.key+"\n"), 0o600); r.err == nil {
				r.node, r.err = m.cli.Register(ctx, file)
			}
		})
	}
	wg.Wait()
	for _, r := range results {
		if r.err != nil {
			w := min(max(2*m.wait[r.client], 2*time.Second), time.Minute)
			m.wait[r.client], m.retry[r.client] = w, time.Now().Add(w)
			fmt.Fprintf(m.log, "client %s: %v (again in %s)\n", r.client, r.err, w)
			continue
		}
		delete(m.wait, r.client)
		delete(m.retry, r.client)
		m.nodes[r.client] = registered{key: r.key, node: r.node}
		m.report.Step("supernode_registered", fmt.Sprintf("client %s node %s", r.client, r.node))
	}
}

// registerAtOnce bounds the flwr processes that register keys at once.
const registerAtOnce = 4

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
