package viewstore

import (
	"encoding/binary"

	"github.com/flmngr/flmngr/events"
)

// Key layout. Every key starts with a one-byte-and-slash family so that
// families can be scanned and dropped by prefix.
var (
	checkpointKey = []byte("m/checkpoint")
	layoutKey     = []byte("m/layout")
	orderPrefix   = []byte("o/")
	taskPrefix    = []byte("t/")
	clientPrefix  = []byte("c/")
	timelinePre   = []byte("l/")
	indexPrefix   = []byte("x/")
)

func taskKey(id string) []byte   { return append(append([]byte{}, taskPrefix...), id...) }
func clientKey(id string) []byte { return append(append([]byte{}, clientPrefix...), id...) }

func seqBytes(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

func timelineKey(seq uint64) []byte {
	return append(append([]byte{}, timelinePre...), seqBytes(seq)...)
}

// indexPrefixOf is the prefix of the timeline index of one aggregate:
// x/t/<task>/ or x/c/<client>/.
func indexPrefixOf(kind, id string) []byte {
	k := append([]byte{}, indexPrefix...)
	switch kind {
	case events.KindTask:
		k = append(k, 't', '/')
	case events.KindEnrolment:
		k = append(k, 'e', '/')
	default:
		k = append(k, 'c', '/')
	}
	k = append(k, id...)
	return append(k, '/')
}

func indexKey(kind, id string, seq uint64) []byte {
	return append(indexPrefixOf(kind, id), seqBytes(seq)...)
}

// orderKey indexes a task by creation: o/<created seq><id>.
func orderKey(createdSeq uint64, id string) []byte {
	return append(append(append([]byte{}, orderPrefix...), seqBytes(createdSeq)...), id...)
}
