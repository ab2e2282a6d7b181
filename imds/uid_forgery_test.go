//go:build linux

package imds

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// sendAndCloseAs runs, as uid, a client that connects to addr, sends req
// and closes its socket at once (bash's /dev/tcp: no tool to install).
func sendAndCloseAs(t *testing.T, uid uint32, addr netip.AddrPort, req string) {
	t.Helper()
	if err := runSendAndClose(uid, addr, req); err != nil {
		t.Fatal(err)
	}
}

func runSendAndClose(uid uint32, addr netip.AddrPort, req string) error {
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/%d && printf '%%s' "$REQ" >&3 && exec 3>&-`, addr.Addr(), addr.Port())
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = []string{"REQ=" + req}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("client as uid %d: %v %s", uid, err, out)
	}
	return nil
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root: this test must not skip there")
		}
		t.Skip("needs root to run clients as other uids")
	}
}

// TestUIDOfClosedSocketIsUnknown: the attack of the hostile-users issue.
// A client that closes its socket right after sending leaves an orphaned
// socket that sock_diag reports as uid 0; the lookup must call the uid
// unknown instead of believing root.
func TestUIDOfClosedSocketIsUnknown(t *testing.T) {
	needRoot(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lookup := SockDiagUID()
	client := make(chan error, 1)
	go func() { client <- runSendAndClose(4242, ln.Addr().(*net.TCPAddr).AddrPort(), "hello") }()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-client; err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Read to EOF: the client has closed; its socket is orphaned.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	local, remote := c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
	// Closing our end too puts the client's socket in TIME_WAIT, the
	// mini-socket the kernel reports with uid 0: the forgery, every time.
	c.Close()
	uid, err := lookup(local, remote)
	t.Logf("lookup of a closed client socket: uid %d, %v", uid, err)
	if err == nil {
		t.Fatalf("the uid of a closed, orphaned client socket was believed: %d", uid)
	}
}

// TestClosedSocketsCannotForgeRoot drives the attack end to end: an
// unprivileged uid sends requests and closes at once, 40 times, against a
// sidecar whose only client is uid 0. None may be served as that client.
func TestClosedSocketsCannotForgeRoot(t *testing.T) {
	needRoot(t)
	f := startFixture(t, uidProcessYAML, fixtureOpts{uid: SockDiagUID()})
	addr := netip.MustParseAddrPort(f.addr)
	const attempts = 40
	for range attempts {
		sendAndCloseAs(t, 4343, addr, "GET /role/reports HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	}
	// Each request is answered (or refused) before its connection's
	// handler returns; wait for all of them to be counted.
	f.metrics.await(10*time.Second, func() bool { return f.metrics.count(epECS, 200)+f.metrics.count(epECS, 403) >= attempts })
	served, refused := f.metrics.count(epECS, 200), f.metrics.count(epECS, 403)
	t.Logf("closed-socket attack: %d of %d requests served as uid 0's client, %d refused", served, attempts, refused)
	if served != 0 {
		t.Fatalf("%d requests from uid 4343 were served as uid 0's client", served)
	}
}

// TestSockDiagUnderConcurrency: many lookups at once go through the
// coalescer's batches (exact lookups or dumps), and each still finds its
// own socket's owner.
func TestSockDiagUnderConcurrency(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const n = 300
	var clients, servers []net.Conn
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		s, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		servers = append(servers, s)
	}
	defer func() {
		for i := range clients {
			clients[i].Close()
			servers[i].Close()
		}
	}()
	lookup := SockDiagUID()
	errs := make(chan error, n)
	for _, s := range servers {
		go func() {
			uid, err := lookup(s.LocalAddr().(*net.TCPAddr).AddrPort(), s.RemoteAddr().(*net.TCPAddr).AddrPort())
			if err == nil && uid != uint32(os.Geteuid()) {
				err = fmt.Errorf("uid %d, want %d", uid, os.Geteuid())
			}
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
