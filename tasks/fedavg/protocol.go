package fedavg

import (
	"encoding/gob"
	"net"
	"time"
)

// Messages between server and clients, gob-encoded on one TCP connection
// per client.
type hello struct {
	ClientID string
	Examples int
}

const (
	msgRound  = "round"
	msgDone   = "done"
	msgReject = "reject"
)

type serverMsg struct {
	Kind     string
	Round    int
	Model    Model
	Train    TrainConfig
	Reason   string
	Accuracy float64
}

type update struct {
	Round    int
	Model    Model
	Examples int
	Loss     float64
	Accuracy float64
}

// conn is a gob stream with a deadline per message.
type conn struct {
	c   net.Conn
	enc *gob.Encoder
	dec *gob.Decoder
}

func newConn(c net.Conn) *conn {
	return &conn{c: c, enc: gob.NewEncoder(c), dec: gob.NewDecoder(c)}
}

func (c *conn) send(v any, timeout time.Duration) error {
	_ = c.c.SetWriteDeadline(time.Now().Add(timeout))
	return c.enc.Encode(v)
}

func (c *conn) recv(v any, timeout time.Duration) error {
	_ = c.c.SetReadDeadline(time.Now().Add(timeout))
	return c.dec.Decode(v)
}
