package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// journal keeps the outbox's reports where an agent that starts again
// finds them: a file in the work directory, or a stream in the JetStream
// of the site's leaf node.
type journal interface {
	// load returns the reports an earlier life left unacknowledged, in
	// order.
	load() ([]pending, error)
	// add keeps a report.
	add(p *pending) error
	// acked is told of the report with key that no longer waits (the
	// cloud acknowledged it, or a full outbox dropped it) and of the
	// reports that still wait.
	acked(key string, rest []pending) error
	close()
}

// fileJournal appends a line per report and per acknowledgement to a file
// and rewrites it with only what waits once it grows past maxJournal.
type fileJournal struct {
	path    string
	f       *os.File
	written int64
}

// journalLine is one line of a file journal: a report, or the key of one
// the cloud acknowledged.
type journalLine struct {
	Add *pending `json:"add,omitempty"`
	Ack string   `json:"ack,omitempty"`
}

// maxJournal is the size past which a file journal is rewritten.
const maxJournal = 4 << 20

func newFileJournal(path string) *fileJournal { return &fileJournal{path: path} }

func (j *fileJournal) load() ([]pending, error) {
	b, err := os.ReadFile(j.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var left []pending
	for line := range bytes.Lines(b) {
		var l journalLine
		if json.Unmarshal(line, &l) != nil {
			continue // a line cut by a crash
		}
		switch {
		case l.Add != nil:
			left = append(left, *l.Add)
		case l.Ack != "":
			left = slices.DeleteFunc(left, func(p pending) bool { return p.Key == l.Ack })
		}
	}
	return left, j.rewrite(left)
}

// rewrite replaces the journal with the reports that wait.
func (j *fileJournal) rewrite(queue []pending) error {
	var buf bytes.Buffer
	for i := range queue {
		b, _ := json.Marshal(journalLine{Add: &queue[i]})
		buf.Write(append(b, '\n'))
	}
	tmp := j.path + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, j.path); err != nil {
		return err
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	j.close()
	j.f, j.written = f, int64(buf.Len())
	return nil
}

func (j *fileJournal) line(l journalLine) error {
	if j.f == nil {
		return errors.New("journal closed")
	}
	b, _ := json.Marshal(l)
	n, err := j.f.Write(append(b, '\n'))
	j.written += int64(n)
	return err
}

func (j *fileJournal) add(p *pending) error { return j.line(journalLine{Add: p}) }

func (j *fileJournal) acked(key string, rest []pending) error {
	if j.written > maxJournal {
		return j.rewrite(rest)
	}
	return j.line(journalLine{Ack: key})
}

func (j *fileJournal) close() {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// streamJournal keeps each report as a message of a stream in the leaf
// node's own JetStream, which the site's disk holds whatever its link
// does. What the cloud acknowledged is purged: the stream holds exactly
// the reports that wait, from the oldest.
type streamJournal struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	name    string
	subject string
}

// streamTimeout bounds each call to the leaf's JetStream (in process).
const streamTimeout = 5 * time.Second

func newStreamJournal(js jetstream.JetStream, clientID string) *streamJournal {
	return &streamJournal{js: js, name: "FLMNGR_OUTBOX_" + clientID, subject: "flmngr.outbox." + clientID}
}

func (j *streamJournal) load() ([]pending, error) {
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	st, err := j.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: j.name, Subjects: []string{j.subject}, Storage: jetstream.FileStorage,
		MaxMsgs: 2 * maxOutbox, MaxBytes: 256 << 20, Discard: jetstream.DiscardNew,
		Description: "reports of the client agent that wait for the cloud",
	})
	if err != nil {
		return nil, fmt.Errorf("leaf node stream %s: %w", j.name, err)
	}
	j.stream = st
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	var left []pending
	for len(left) < int(info.State.Msgs) {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			meta, err := msg.Metadata()
			if err != nil {
				return nil, err
			}
			var p pending
			if json.Unmarshal(msg.Data(), &p) != nil {
				continue
			}
			p.seq = meta.Sequence.Stream
			left = append(left, p)
			if meta.Sequence.Stream >= info.State.LastSeq {
				return left, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, err
		}
		if n == 0 {
			break
		}
	}
	return left, nil
}

func (j *streamJournal) add(p *pending) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	ack, err := j.js.Publish(ctx, j.subject, b, jetstream.WithMsgID(p.Key), jetstream.WithExpectStream(j.name))
	if err != nil {
		return err
	}
	p.seq = ack.Sequence
	return nil
}

func (j *streamJournal) acked(_ string, rest []pending) error {
	ctx, cancel := context.WithTimeout(context.Background(), streamTimeout)
	defer cancel()
	// Everything before the oldest report that waits (and was kept) goes.
	for _, p := range rest {
		if p.seq != 0 {
			return j.stream.Purge(ctx, jetstream.WithPurgeSequence(p.seq))
		}
	}
	return j.stream.Purge(ctx)
}

func (j *streamJournal) close() {}
