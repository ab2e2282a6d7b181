package connlimit

import (
	"net"
	"net/http"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeListener hands out one end of a pipe per Accept and keeps the other.
type fakeListener struct {
	net.Listener
	peers []net.Conn
}

type pipeConn struct {
	net.Conn
	remote net.Addr
}

func (p pipeConn) RemoteAddr() net.Addr { return p.remote }

func (f *fakeListener) next(remote string) net.Conn {
	a, b := net.Pipe()
	f.peers = append(f.peers, b)
	return pipeConn{a, &net.TCPAddr{IP: net.ParseIP(remote), Port: 1}}
}

func (f *fakeListener) close() {
	for _, p := range f.peers {
		p.Close()
	}
}

func admitted(t *testing.T, l *Limiter, f *fakeListener, remote string) *Conn {
	t.Helper()
	c, victim := l.admit(f.next(remote))
	if victim != nil {
		victim.Conn.Close()
	}
	return c
}

// TestVictimOrder: at the bound, a new connection closes an untrusted one
// (busy or not), then a trusted idle one, and is refused only when every
// held connection is trusted and busy.
func TestVictimOrder(t *testing.T) {
	f := &fakeListener{}
	defer f.close()
	l := New(Options{Max: 3})
	trustedBusy := admitted(t, l, f, "127.0.0.1")
	trustedBusy.MarkTrusted("a")
	l.ConnState(trustedBusy, http.StateActive)
	trustedIdle := admitted(t, l, f, "127.0.0.1")
	trustedIdle.MarkTrusted("a")
	l.ConnState(trustedIdle, http.StateIdle)
	untrustedBusy := admitted(t, l, f, "127.0.0.2")
	l.ConnState(untrustedBusy, http.StateActive)
	untrustedBusy.admitted -= int64(2 * activeGrace) // past its first request's grace

	c1 := admitted(t, l, f, "127.0.0.3") // evicts the untrusted busy one
	if c1 == nil || l.Stats().Open != 3 {
		t.Fatalf("new connection at the bound: %v, open %d", c1, l.Stats().Open)
	}
	if _, held := l.conns[untrustedBusy]; held {
		t.Fatal("the untrusted connection was not the one closed")
	}
	c1.MarkTrusted("a")
	l.ConnState(c1, http.StateActive)
	c2 := admitted(t, l, f, "127.0.0.4") // only a trusted idle one is left to close
	if c2 == nil {
		t.Fatal("refused while a trusted idle connection could make room")
	}
	if _, held := l.conns[trustedIdle]; held {
		t.Fatal("the trusted idle connection was not the one closed")
	}
	c2.MarkTrusted("a")
	l.ConnState(c2, http.StateActive)
	if c3 := admitted(t, l, f, "127.0.0.5"); c3 != nil {
		t.Fatal("admitted although every connection is trusted and busy")
	}
	if l.Stats().Open != 3 {
		t.Fatalf("open %d, want the bound 3", l.Stats().Open)
	}
	// A closed connection frees its place.
	l.ConnState(trustedBusy, http.StateClosed)
	if c4 := admitted(t, l, f, "127.0.0.5"); c4 == nil {
		t.Fatal("refused after a connection closed")
	}
}

// TestPerSource: once half full, one source holds at most PerSource.
func TestPerSource(t *testing.T) {
	f := &fakeListener{}
	defer f.close()
	l := New(Options{Max: 10, PerSource: 2, Source: func(c net.Conn) string { return c.RemoteAddr().String() }})
	for range 5 {
		if admitted(t, l, f, "169.254.170.10") == nil {
			t.Fatal("refused below half the bound")
		}
	}
	for i := range 2 {
		if admitted(t, l, f, "169.254.170.10") == nil {
			t.Fatalf("the source's share above half was refused (%d)", i)
		}
	}
	if admitted(t, l, f, "169.254.170.10") != nil {
		t.Fatal("the source went over its share")
	}
	if admitted(t, l, f, "169.254.170.11") == nil {
		t.Fatal("another source was refused")
	}
	l.SetLimits(10, 3)
	if admitted(t, l, f, "169.254.170.10") == nil {
		t.Fatal("a raised share was not applied")
	}
}

// TestYoungRequestSpared: an untrusted connection whose first request is
// still in flight (it may be a trusted caller being identified) is closed
// only when no idle trusted connection can make room instead.
func TestYoungRequestSpared(t *testing.T) {
	f := &fakeListener{}
	defer f.close()
	l := New(Options{Max: 2})
	idle := admitted(t, l, f, "127.0.0.1")
	idle.MarkTrusted("a")
	l.ConnState(idle, http.StateIdle)
	young := admitted(t, l, f, "127.0.0.2")
	l.ConnState(young, http.StateActive)
	if admitted(t, l, f, "127.0.0.3") == nil {
		t.Fatal("refused")
	}
	if _, held := l.conns[young]; !held {
		t.Fatal("a young connection mid-request was closed while an idle trusted one could make room")
	}
}

// TestTrustedShareCapped: a client holds at most PerSource trusted
// connections; beyond that its connections stay closable, so a hostile
// user with a client of their own cannot pin the listener full.
func TestTrustedShareCapped(t *testing.T) {
	f := &fakeListener{}
	defer f.close()
	l := New(Options{Max: 100, PerSource: 2})
	var conns []*Conn
	for range 3 {
		c := admitted(t, l, f, "127.0.0.1")
		c.MarkTrusted("hostile")
		conns = append(conns, c)
	}
	if !conns[0].trusted.Load() || !conns[1].trusted.Load() || conns[2].trusted.Load() {
		t.Fatalf("trusted: %v %v %v, want the first two only", conns[0].trusted.Load(), conns[1].trusted.Load(), conns[2].trusted.Load())
	}
	other := admitted(t, l, f, "127.0.0.1")
	if other.MarkTrusted("other"); !other.trusted.Load() {
		t.Fatal("another client's connection was not trusted")
	}
	// A trusted connection that closes frees its client's share.
	l.ConnState(conns[0], http.StateClosed)
	if conns[2].MarkTrusted("hostile"); !conns[2].trusted.Load() {
		t.Fatal("the freed share was not used")
	}
}

// BenchmarkConnLife is what the limiter adds to one short connection (the
// SDKs' cold sequence: admission, three requests' state changes, close),
// below the bound.
func BenchmarkConnLife(b *testing.B) {
	l := New(Options{Max: 1024})
	nc := pipeConn{remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}}
	b.ReportAllocs()
	for range b.N {
		c, _ := l.admit(nc)
		l.ConnState(c, http.StateNew)
		for range 3 {
			l.ConnState(c, http.StateActive)
			l.ConnState(c, http.StateIdle)
		}
		c.MarkTrusted("bench")
		l.ConnState(c, http.StateClosed)
	}
}

// TestOnClose: the hook set last runs once, when the connection closes,
// however often it is closed.
func TestOnClose(t *testing.T) {
	l := New(Options{Max: 4})
	f := &fakeListener{}
	defer f.close()
	c := admitted(t, l, f, "127.0.0.1")
	var first, last int
	c.OnClose(func() { first++ })
	c.OnClose(func() { last++ })
	c.Close()
	c.Close()
	if first != 0 || last != 1 {
		t.Fatalf("hooks ran %d and %d times; want 0 and 1", first, last)
	}
}
