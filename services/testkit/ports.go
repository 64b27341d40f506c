package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
)

// FreeAddr returns a loopback address ("127.0.0.1:port") nothing listens
// on right now, for a server the test starts.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return "127.0.0.1:" + strconv.Itoa(FreePort(t))
}

// FreePort returns a loopback port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePorts(t, 1)[0]
}

// FreePorts returns n distinct loopback ports nothing listens on right
// now.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports, err := LoopbackPorts(n)
	if err != nil {
		t.Fatal(err)
	}
	return ports
}

// LoopbackAddr is FreeAddr for callers without a testing.TB (godog
// steps).
func LoopbackAddr() (string, error) {
	ports, err := LoopbackPorts(1)
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(ports[0]), nil
}

// LoopbackPorts is FreePorts for callers without a testing.TB: the n
// ports are all held while they are chosen, so they are distinct.
//
// They are drawn at random from below the kernel's ephemeral range: a
// port the kernel hands out for ":0" or for an outgoing connection may be
// handed out again to anything on the machine (another test's dial, say)
// between the moment it is chosen and the moment the server binds it, and
// a server that cannot bind its cluster port dies.
func LoopbackPorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	lo, hi := belowEphemeral()
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0"
		if tries < 64*n && hi > lo {
			addr = "127.0.0.1:" + strconv.Itoa(lo+rand.IntN(hi-lo))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr != "127.0.0.1:0" {
				continue
			}
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// belowEphemeral is the range of ports [lo, hi) under the kernel's
// ephemeral ones (hi == lo: unknown).
func belowEphemeral() (lo, hi int) {
	const floor = 10000
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return floor, floor
	}
	var first, last int
	if _, err := fmt.Sscan(string(b), &first, &last); err != nil || first <= floor+1000 {
		return floor, floor
	}
	return floor, first
}
