package imds

import (
	"context"
	"errors"
	"net"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/agent"
)

// closingAttestor attests every socket as one process and records the
// sockets it is told were closed.
type closingAttestor struct {
	fail   bool
	mu     sync.Mutex
	closed []SocketOwner
}

func (a *closingAttestor) Attest(uid uint32, inode uint64) (*agent.Process, error) {
	if a.fail {
		return nil, errors.New("gone")
	}
	return &agent.Process{PID: 42, Unit: "billing.service"}, nil
}

func (a *closingAttestor) Closed(uid uint32, inode uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closed = append(a.closed, SocketOwner{UID: uid, Inode: inode})
}

// hookConn is a connection that keeps its close hook, as connlimit's does.
type hookConn struct {
	net.Conn
	onClose func()
}

func (c *hookConn) OnClose(f func()) { c.onClose = f }
func (c *hookConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *hookConn) LocalAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80} }

// TestAttestedConnectionCloseTold: a connection whose process was attested
// tells the attestor, when it closes, which socket of which uid it was
// (where that process's next socket most likely is); one whose
// attestation failed tells nothing.
func TestAttestedConnectionCloseTold(t *testing.T) {
	for _, fail := range []bool{false, true} {
		pa := &closingAttestor{fail: fail}
		cfg := parseConfig(t, sharedYAML)
		ag, err := agent.New(agent.Options{Source: &staticSource{}, Logger: zaptest.NewLogger(t), DisableWarm: true}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ag.Close)
		s, err := New(Options{Agent: ag, Config: cfg, Logger: zaptest.NewLogger(t), Metrics: &recMetrics{}, Process: pa,
			Socket: func(_, _ netip.AddrPort) (SocketOwner, error) { return SocketOwner{UID: 1000, Inode: 777}, nil }})
		if err != nil {
			t.Fatal(err)
		}
		c := &hookConn{}
		ci := connOf(httptest.NewRequest("GET", "/", nil).WithContext(s.ConnContext(context.Background(), c)))
		p, err := ci.caller.Process()
		if (err != nil) != fail || (!fail && p.Unit != "billing.service") {
			t.Fatalf("attestation failing %v: %+v, %v", fail, p, err)
		}
		if fail {
			if c.onClose != nil {
				t.Fatal("a failed attestation registered a close hook")
			}
			continue
		}
		if c.onClose == nil {
			t.Fatal("no close hook registered")
		}
		c.onClose()
		if len(pa.closed) != 1 || pa.closed[0] != (SocketOwner{UID: 1000, Inode: 777}) {
			t.Fatalf("told %+v; want uid 1000's socket 777", pa.closed)
		}
	}
}
