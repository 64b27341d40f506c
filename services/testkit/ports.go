package testkit

import (
	"net"
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
func LoopbackPorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
