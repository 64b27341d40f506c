package viewstore

import (
	"bytes"
	"encoding/hex"
	"fmt"

	json "github.com/goccy/go-json"

	badgerdb "github.com/dgraph-io/badger/v4"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
)

// Task returns the view of one task, or nil when there is none.
func (s *Store) Task(id string) (*projections.TaskView, error) {
	return viewOf[projections.TaskView](s, taskKey(id))
}

// Client returns the view of one client, or nil when there is none.
func (s *Store) Client(id string) (*projections.ClientView, error) {
	return viewOf[projections.ClientView](s, clientKey(id))
}

// viewOf reads the JSON view stored at key, or nil when there is none.
func viewOf[T any](s *Store, key []byte) (*T, error) {
	var v *T
	err := s.view(func(txn *badgerdb.Txn) error {
		var err error
		v, err = getJSON[T](txn, key)
		return err
	})
	return v, err
}

// Tasks returns the views of the tasks matching f, ordered by creation.
func (s *Store) Tasks(f projections.TaskFilter) ([]projections.TaskView, error) {
	var out []projections.TaskView
	for after := ""; ; {
		page, next, err := s.TasksPage(f, after, projections.MaxPage)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if next == "" {
			return out, nil
		}
		after = next
	}
}

// Clients returns the views of every client, ordered by id.
func (s *Store) Clients() ([]projections.ClientView, error) {
	var out []projections.ClientView
	err := s.scan(clientPrefix, func(b []byte) error {
		var v projections.ClientView
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

func (s *Store) scan(prefix []byte, fn func([]byte) error) error {
	return s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if err := it.Item().Value(fn); err != nil {
				return err
			}
		}
		return nil
	})
}

// Timeline returns a page of timeline entries in stream order and the
// sequence to pass as After for the next page (zero: no more).
func (s *Store) Timeline(q projections.TimelineQuery) ([]projections.TimelineEntry, uint64, error) {
	if q.Task != "" && q.Client != "" {
		return nil, 0, fmt.Errorf("timeline: task and client are exclusive")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 10_000)
	var out []projections.TimelineEntry
	var next uint64
	err := s.view(func(txn *badgerdb.Txn) error {
		prefix := timelinePre
		switch {
		case q.Task != "":
			prefix = indexPrefixOf(events.KindTask, q.Task)
		case q.Client != "":
			prefix = indexPrefixOf(events.KindClient, q.Client)
		}
		indexed := !bytes.Equal(prefix, timelinePre)
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix, PrefetchValues: !indexed, PrefetchSize: min(limit, 1000)})
		defer it.Close()
		for it.Seek(append(bytes.Clone(prefix), seqBytes(q.After+1)...)); it.Valid(); it.Next() {
			if len(out) == limit {
				next = out[len(out)-1].Seq
				return nil
			}
			item := it.Item()
			var raw []byte
			var err error
			if indexed {
				key := item.Key()
				seq := key[len(key)-8:]
				raw, err = getRaw(txn, append(bytes.Clone(timelinePre), seq...))
			} else {
				raw, err = item.ValueCopy(nil)
			}
			if err != nil {
				return err
			}
			var e projections.TimelineEntry
			if err := json.Unmarshal(raw, &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, next, err
}

func getRaw(txn *badgerdb.Txn, key []byte) ([]byte, error) {
	item, err := txn.Get(key)
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// Dump calls fn with every key and value in key order: the views, the
// timeline and the checkpoint. Tests use it to compare two stores.
func (s *Store) Dump(fn func(key, value []byte) error) error {
	return s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if err := fn(it.Item().KeyCopy(nil), v); err != nil {
				return err
			}
		}
		return nil
	})
}

// TasksPage returns up to limit tasks matching f, in creation order,
// after the cursor after ("" : from the first), and the cursor of the
// next page ("" : no more).
func (s *Store) TasksPage(f projections.TaskFilter, after string, limit int) ([]projections.TaskView, string, error) {
	limit = projections.PageLimit(limit)
	start, err := cursorKey(after)
	if err != nil {
		return nil, "", err
	}
	out := []projections.TaskView{}
	next := ""
	err = s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: orderPrefix})
		defer it.Close()
		it.Seek(start)
		if start != nil && it.Valid() && bytes.Equal(it.Item().Key(), start) {
			it.Next()
		}
		for ; it.Valid(); it.Next() {
			key := it.Item().KeyCopy(nil)
			id := string(key[len(orderPrefix)+8:])
			v, err := getJSON[projections.TaskView](txn, taskKey(id))
			if err != nil {
				return err
			}
			if v == nil || !f.Match(v) {
				continue
			}
			if len(out) == limit {
				next = cursorOf(out[len(out)-1])
				return nil
			}
			out = append(out, *v)
		}
		return nil
	})
	return out, next, err
}

// cursorOf is the cursor that pages after a task: its creation index.
func cursorOf(v projections.TaskView) string {
	return hex.EncodeToString(orderKey(v.CreatedSeq, v.ID)[len(orderPrefix):])
}

// cursorKey reads a task cursor back into its index key.
func cursorKey(after string) ([]byte, error) {
	if after == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(after)
	if err != nil || len(b) < 9 {
		return nil, fmt.Errorf("bad page cursor %q", after)
	}
	return append(append([]byte{}, orderPrefix...), b...), nil
}

// ClientsPage returns up to limit clients by id after the id after ("" :
// from the first), and the id to page after next ("" : no more).
func (s *Store) ClientsPage(after string, limit int) ([]projections.ClientView, string, error) {
	limit = projections.PageLimit(limit)
	out := []projections.ClientView{}
	next := ""
	err := s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: clientPrefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		if after == "" {
			it.Rewind()
		} else {
			it.Seek(clientKey(after))
			if it.Valid() && string(it.Item().Key()) == string(clientKey(after)) {
				it.Next()
			}
		}
		for ; it.Valid(); it.Next() {
			if len(out) == limit {
				next = out[len(out)-1].ID
				return nil
			}
			var v projections.ClientView
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &v) }); err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	return out, next, err
}

// Counts returns how many tasks and clients the views hold, reading keys
// only.
func (s *Store) Counts() (tasks, clients int, err error) {
	count := func(txn *badgerdb.Txn, prefix []byte) int {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: prefix})
		defer it.Close()
		n := 0
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return n
	}
	err = s.view(func(txn *badgerdb.Txn) error {
		tasks, clients = count(txn, taskPrefix), count(txn, clientPrefix)
		return nil
	})
	return tasks, clients, err
}
