package sinktest

import (
	"net"
	"testing"
)

// ClosedAddr is a loopback address where nothing listens: a port just
// opened and closed again, so that a dial to it is refused.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
