package testkit

import (
	"net"
	"strconv"
	"testing"
)

// The ports are distinct, free, and below the kernel's ephemeral range
// where it is known, so no outgoing connection can take one before the
// server binds it.
func TestLoopbackPortsAreFreeDistinctAndNotEphemeral(t *testing.T) {
	lo, hi := belowEphemeral()
	ports, err := LoopbackPorts(50)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d chosen twice: %v", p, ports)
		}
		seen[p] = true
		if hi > lo && (p < lo || p >= hi) {
			t.Fatalf("port %d outside [%d, %d)", p, lo, hi)
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			t.Fatalf("port %d is not free: %v", p, err)
		}
		l.Close()
	}
}
