//go:build linux

package proc

import (
	"net"
	"syscall"
	"testing"
)

// BenchmarkAttest is one attestation of a held socket, uncontended. scan:
// a client reads the executable, so every attestation scans the caller
// uid's /proc/PID/fd, then does the pidfd-pinned reads and the re-check.
// fast: no client does, and the socket is found in the process that held
// the uid's previous one (the same process here, as for a service's next
// connection).
func BenchmarkAttest(b *testing.B) {
	for _, bc := range []struct {
		name string
		exe  bool
	}{{"scan", true}, {"fast", false}} {
		b.Run(bc.name, func(b *testing.B) {
			a, _, err := New(Options{ExeMatched: bc.exe})
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
			b.ReportMetric(float64(a.Scans.Load())/float64(b.N), "scans/op")
		})
	}
}
