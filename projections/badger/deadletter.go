package badger

import (
	"errors"
	"strings"
	"unicode/utf8"

	badgerdb "github.com/dgraph-io/badger/v4"
	json "github.com/goccy/go-json"

	"github.com/flmngr/flmngr/events"
)

// DeadLetter is a message of the log that is not a readable event
// (malformed, or of a type this version does not know). The views record
// it and go on: no single message can stop them, nor the cloud from
// starting.
type DeadLetter struct {
	Seq   uint64 `json:"seq"`
	Error string `json:"error"`
	Size  int    `json:"size"`
	// Head is the start of the message, as text.
	Head string `json:"head"`
}

// deadLetterPrefix is the key family of dead letters, by sequence.
var deadLetterPrefix = []byte("d/")

func deadLetterKey(seq uint64) []byte {
	return append(append([]byte{}, deadLetterPrefix...), seqBytes(seq)...)
}

func newDeadLetter(seq uint64, data []byte, err error) DeadLetter {
	head := data
	if len(head) > 256 {
		head = head[:256]
	}
	h := string(head)
	if !utf8.ValidString(h) {
		h = strings.ToValidUTF8(h, "\uFFFD")
	}
	return DeadLetter{Seq: seq, Error: err.Error(), Size: len(data), Head: h}
}

// decodeOrDead decodes an event, or makes it a dead letter.
func decodeOrDead(seq uint64, data []byte) (events.Envelope, *DeadLetter) {
	e, err := events.Decode(data, seq)
	if err != nil {
		d := newDeadLetter(seq, data, err)
		return events.Envelope{}, &d
	}
	return e, nil
}

// DeadLetters returns how many messages the views could not read, and
// the last of them.
func (s *Store) DeadLetters() (int, *DeadLetter, error) {
	n := 0
	var last *DeadLetter
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
		last = new(DeadLetter)
		return rit.Item().Value(func(b []byte) error { return json.Unmarshal(b, last) })
	})
	return n, last, err
}
