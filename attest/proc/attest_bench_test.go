//go:build linux

package proc

import (
	"net"
	"syscall"
	"testing"
)

// BenchmarkAttest is one attestation of a held socket, uncontended: a
// scan of the caller uid's /proc/PID/fd, the pidfd-pinned reads, the
// re-check.
func BenchmarkAttest(b *testing.B) {
	a, _, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	s, _ := ln.Accept()
	defer s.Close()
	f, _ := c.(*net.TCPConn).File()
	defer f.Close()
	var st syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &st)
	for b.Loop() {
		if _, err := a.Attest(uint32(syscall.Geteuid()), st.Ino); err != nil {
			b.Fatal(err)
		}
	}
}
