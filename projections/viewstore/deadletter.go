package viewstore

import (
	"errors"
	"strings"
	"unicode/utf8"

	badgerdb "github.com/dgraph-io/badger/v4"
	json "github.com/goccy/go-json"

	"github.com/flmngr/flmngr/events"
	"github.com/flmngr/flmngr/projections"
)

// deadLetterPrefix is the key family of dead letters, by sequence.
var deadLetterPrefix = []byte("d/")

func deadLetterKey(seq uint64) []byte {
	return append(append([]byte{}, deadLetterPrefix...), seqBytes(seq)...)
}

func newDeadLetter(seq uint64, data []byte, err error) projections.DeadLetter {
	head := data
	if len(head) > 256 {
		head = head[:256]
	}
	h := string(head)
	if !utf8.ValidString(h) {
		h = strings.ToValidUTF8(h, "\uFFFD")
	}
	return projections.DeadLetter{Seq: seq, Error: err.Error(), Size: len(data), Head: h}
}

// decodeOrDead decodes an event, or makes it a dead letter.
func decodeOrDead(seq uint64, data []byte) (events.Envelope, *projections.DeadLetter) {
	e, err := events.Decode(data, seq)
	if err != nil {
		d := newDeadLetter(seq, data, err)
		return events.Envelope{}, &d
	}
	return e, nil
}

// DeadLetters returns how many messages the views could not read, and
// the last of them.
func (s *Store) DeadLetters() (int, *projections.DeadLetter, error) {
	n := 0
	var last *projections.DeadLetter
	err := s.view(func(txn *badgerdb.Txn) error {
		it := txn.NewIterator(badgerdb.IteratorOptions{Prefix: deadLetterPrefix, PrefetchValues: false})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		if n == 0 {
			return nil
		}
		rit := txn.NewIterator(badgerdb.IteratorOptions{Prefix: deadLetterPrefix, Reverse: true})
		defer rit.Close()
		rit.Seek(append(append([]byte{}, deadLetterPrefix...), 0xff))
		if !rit.Valid() {
			return errors.New("dead letters: counted but not found")
		}
		last = new(projections.DeadLetter)
		return rit.Item().Value(func(b []byte) error { return json.Unmarshal(b, last) })
	})
	return n, last, err
}
