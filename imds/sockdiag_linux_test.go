//go:build linux

package imds

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// connPair is a loopback connection: the client's conn and the accepted one.
func connPair(t *testing.T, network, addr string) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	client, err = net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

func inodeOf(t *testing.T, c net.Conn) uint32 {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.Fstat(int(fd), &st) }); err != nil || serr != nil {
		t.Fatalf("fstat: %v %v", err, serr)
	}
	return uint32(st.Ino)
}

func pairOf(server net.Conn) sockPair {
	return sockPair{client: server.RemoteAddr().(*net.TCPAddr).AddrPort(), server: server.LocalAddr().(*net.TCPAddr).AddrPort()}
}

// TestExactDiag: the exact (non-dump) sock_diag lookup finds the client
// socket of a loopback connection, IPv4 and IPv6, with its owner and
// inode; a v4-mapped address asks as IPv4.
func TestExactDiag(t *testing.T) {
	d := &exactDiag{}
	for _, tc := range []struct{ name, network, addr string }{
		{"ipv4", "tcp4", "127.0.0.1:0"},
		{"ipv6", "tcp6", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := connPair(t, tc.network, tc.addr)
			p := pairOf(server)
			for _, q := range []sockPair{p, {netip.AddrPortFrom(netip.AddrFrom16(p.client.Addr().As16()), p.client.Port()), netip.AddrPortFrom(netip.AddrFrom16(p.server.Addr().As16()), p.server.Port())}} {
				o, err := d.get(q)
				if err != nil {
					t.Fatalf("get %v: %v", q, err)
				}
				if o.State != unix.BPF_TCP_ESTABLISHED || o.UID != uint32(os.Geteuid()) || o.Inode != inodeOf(t, client) {
					t.Fatalf("get %v: %+v; want ESTABLISHED, uid %d, inode %d", q, o, os.Geteuid(), inodeOf(t, client))
				}
			}
			// The server's own end, asked for as the client's, is ours too;
			// the point is that the 4-tuple decides which socket answers.
			o, err := d.get(sockPair{client: p.server, server: p.client})
			if err != nil || o.Inode != inodeOf(t, server) {
				t.Fatalf("the accepted end: %+v, %v; want inode %d", o, err, inodeOf(t, server))
			}
		})
	}
	if n := len(d.idle); n != 1 {
		t.Errorf("%d pooled netlink sockets after sequential lookups, want 1", n)
	}
}

// TestExactDiagNoSocket: a 4-tuple no socket has is ENOENT, and one whose
// client end is a listening port is not answered by the listener (the
// kernel's lookup falls back to it).
func TestExactDiagNoSocket(t *testing.T) {
	d := &exactDiag{}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lport := ln.Addr().(*net.TCPAddr).AddrPort()
	// Nothing listens on port 1 of 127.0.0.3; nothing is connected to it.
	none := sockPair{client: netip.MustParseAddrPort("127.0.0.3:1"), server: netip.MustParseAddrPort("127.0.0.3:2")}
	if o, err := d.get(none); !errors.Is(err, errNoSocket) {
		t.Errorf("no such socket: %+v, %v; want errNoSocket", o, err)
	}
	// The client end is the listener's address: only the listener matches.
	if o, err := d.get(sockPair{client: lport, server: netip.MustParseAddrPort("127.0.0.1:9")}); !errors.Is(err, errNoSocket) {
		t.Errorf("a listener's address: %+v, %v; want errNoSocket (the listener is not the client socket)", o, err)
	}
	if _, err := d.get(sockPair{client: netip.MustParseAddrPort("127.0.0.1:1"), server: netip.MustParseAddrPort("[::1]:2")}); err == nil {
		t.Error("mixed address families were asked about")
	}
}

// TestSockDiagSocketExact: SockDiagSocket answers an established
// connection by the exact lookup (no dump).
func TestSockDiagSocketExact(t *testing.T) {
	client, server := connPair(t, "tcp4", "127.0.0.1:0")
	look := SockDiagSocket()
	o, err := look(server.LocalAddr().(*net.TCPAddr).AddrPort(), server.RemoteAddr().(*net.TCPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	if o.UID != uint32(os.Geteuid()) || o.Inode != uint64(inodeOf(t, client)) {
		t.Fatalf("%+v; want uid %d inode %d", o, os.Geteuid(), inodeOf(t, client))
	}
}

// TestParseDiag: answers of other sequence numbers are skipped, errors
// read, and short or malformed messages refused.
func TestParseDiag(t *testing.T) {
	ne := binary.NativeEndian
	msg := func(typ uint16, seq uint32, body []byte) []byte {
		b := make([]byte, unix.NLMSG_HDRLEN+len(body))
		ne.PutUint32(b[0:], uint32(len(b)))
		ne.PutUint16(b[4:], typ)
		ne.PutUint32(b[8:], seq)
		copy(b[unix.NLMSG_HDRLEN:], body)
		for len(b)%unix.NLMSG_ALIGNTO != 0 {
			b = append(b, 0)
		}
		return b
	}
	errBody := func(e unix.Errno) []byte {
		b := make([]byte, 4+unix.NLMSG_HDRLEN)
		ne.PutUint32(b, uint32(-int32(e)))
		return b
	}
	diag := make([]byte, diagMsgLen)
	diag[0], diag[1] = unix.AF_INET, unix.BPF_TCP_ESTABLISHED
	binary.BigEndian.PutUint16(diag[4:], 40000)
	binary.BigEndian.PutUint16(diag[6:], 8169)
	copy(diag[8:], []byte{127, 0, 0, 2})
	copy(diag[24:], []byte{127, 0, 0, 1})
	ne.PutUint32(diag[4+sockIDLen+12:], 4242)
	ne.PutUint32(diag[4+sockIDLen+16:], 777)

	t.Run("skips other sequence numbers", func(t *testing.T) {
		b := append(msg(unix.NLMSG_ERROR, 6, errBody(unix.ENOENT)), msg(unix.SOCK_DIAG_BY_FAMILY, 7, diag)...)
		o, done, err := parseDiag(b, 7)
		want := sockPair{netip.MustParseAddrPort("127.0.0.2:40000"), netip.MustParseAddrPort("127.0.0.1:8169")}
		if err != nil || !done || o.UID != 4242 || o.Inode != 777 || o.State != unix.BPF_TCP_ESTABLISHED || o.pair != want {
			t.Fatalf("%+v %v %v", o, done, err)
		}
		if _, done, err := parseDiag(msg(unix.SOCK_DIAG_BY_FAMILY, 6, diag), 7); done || err != nil {
			t.Fatalf("another request's answer was taken: %v %v", done, err)
		}
	})
	t.Run("ENOENT", func(t *testing.T) {
		if _, _, err := parseDiag(msg(unix.NLMSG_ERROR, 7, errBody(unix.ENOENT)), 7); !errors.Is(err, errNoSocket) {
			t.Fatalf("%v, want errNoSocket", err)
		}
	})
	t.Run("other errors", func(t *testing.T) {
		if _, _, err := parseDiag(msg(unix.NLMSG_ERROR, 7, errBody(unix.EPERM)), 7); !errors.Is(err, unix.EPERM) {
			t.Fatalf("%v, want EPERM", err)
		}
	})
	t.Run("IPv6 v4-mapped", func(t *testing.T) {
		d6 := make([]byte, diagMsgLen)
		copy(d6, diag[:8])
		d6[0] = unix.AF_INET6
		m := netip.MustParseAddr("::ffff:127.0.0.2").As16()
		copy(d6[8:], m[:])
		m = netip.MustParseAddr("::ffff:127.0.0.1").As16()
		copy(d6[24:], m[:])
		o, _, err := parseDiag(msg(unix.SOCK_DIAG_BY_FAMILY, 7, d6), 7)
		if err != nil || o.pair.client != netip.MustParseAddrPort("127.0.0.2:40000") || o.pair.server != netip.MustParseAddrPort("127.0.0.1:8169") {
			t.Fatalf("%+v %v", o, err)
		}
	})
	for name, b := range map[string][]byte{
		"short inet_diag_msg": msg(unix.SOCK_DIAG_BY_FAMILY, 7, diag[:diagMsgLen-1]),
		"short error":         msg(unix.NLMSG_ERROR, 7, []byte{1}),
		"length beyond data":  msg(unix.SOCK_DIAG_BY_FAMILY, 7, diag)[:20],
		"length below header": func() []byte { b := msg(unix.SOCK_DIAG_BY_FAMILY, 7, diag); ne.PutUint32(b, 4); return b }(),
	} {
		t.Run(name, func(t *testing.T) {
			if _, done, err := parseDiag(b, 7); err == nil || !done {
				t.Fatalf("accepted: %v %v", done, err)
			}
		})
	}
}

// BenchmarkSockDiag compares the exact lookup with the dump that
// vishvananda/netlink's SocketGet makes, with 200 other connections open
// (a cold load leaves thousands of TIME_WAIT sockets: the dump walks them
// all, the exact lookup none).
func BenchmarkSockDiag(b *testing.B) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	var server net.Conn
	for range 200 {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c, s)
		server = s
	}
	p := pairOf(server)
	b.Run("exact", func(b *testing.B) {
		d := &exactDiag{}
		for b.Loop() {
			if _, err := d.get(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("dump", func(b *testing.B) {
		h, err := netlink.NewHandle(unix.NETLINK_INET_DIAG)
		if err != nil {
			b.Skip(err)
		}
		defer h.Close()
		for b.Loop() {
			if _, err := h.SocketGet(net.TCPAddrFromAddrPort(p.client), net.TCPAddrFromAddrPort(p.server)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestExactDiagTransientIsBusy: a lookup the kernel did not answer (here:
// the pooled socket is broken) is ErrUIDBusy, worth asking again, not a
// definitive "unknown" remembered for the connection's life.
func TestExactDiagTransientIsBusy(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fd, err := unix.Dup(int(r.Fd()))
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	d := &exactDiag{idle: []*diagConn{{fd: fd}}} // not a netlink socket: send fails
	p := sockPair{client: netip.MustParseAddrPort("127.0.0.1:40000"), server: netip.MustParseAddrPort("127.0.0.1:80")}
	if _, err := d.get(p); !errors.Is(err, ErrUIDBusy) {
		t.Fatalf("a failed exchange = %v, want ErrUIDBusy", err)
	}
	if _, err := (&exactDiag{}).get(p); !errors.Is(err, errNoSocket) {
		t.Fatalf("no such socket = %v, want errNoSocket (a definitive answer)", err)
	}
}
