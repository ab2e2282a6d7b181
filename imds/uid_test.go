package imds

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
)

const uidYAML = `
region: ` + testRegion + `
sts: { mode: local, local: { account_id: "` + testAccount + `" } }
roles:
  - name: app
    session_name: "uid-{{.UID}}"
clients:
  - name: by-uid
    match: { uids: [%d] }
    roles: [app]
`

// TestUIDMatch: a client matched by uid is served when the lookup names
// that uid, looked up once per connection by both endpoints, and refused
// (403) when the lookup fails: uid conditions fail closed.
func TestUIDMatch(t *testing.T) {
	var mu sync.Mutex
	var seen [][2]netip.AddrPort
	lookup := func(local, remote netip.AddrPort) (uint32, error) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, [2]netip.AddrPort{local, remote})
		return 4242, nil
	}
	f := startFixture(t, fmt.Sprintf(uidYAML, 4242), fixtureOpts{uid: lookup})
	c := newClient(t, "127.0.0.1")
	for range 3 {
		if r := f.call(t, c, http.MethodGet, "/creds", "", nil); r.status != http.StatusOK {
			t.Fatalf("uid 4242: %d %s", r.status, r.body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("uid looked up %d times for one keep-alive connection, want 1", len(seen))
	}
	if seen[0][0].String() != f.addr || seen[0][1].Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("lookup got local %v remote %v; want local %s and the client's address", seen[0][0], seen[0][1], f.addr)
	}

	for name, o := range map[string]fixtureOpts{
		"other_uid":     {uid: func(netip.AddrPort, netip.AddrPort) (uint32, error) { return 1, nil }},
		"lookup_fails":  {uid: func(netip.AddrPort, netip.AddrPort) (uint32, error) { return 4242, errors.New("no socket") }},
		"no_uid_lookup": {},
	} {
		t.Run(name, func(t *testing.T) {
			f := startFixture(t, fmt.Sprintf(uidYAML, 4242), o)
			c := newClient(t, "127.0.0.1")
			checkError(t, f.call(t, c, http.MethodGet, "/creds", "", nil), http.StatusForbidden, "AccessDenied")
		})
	}
}

// TestSockDiagUID: the real sock_diag lookup finds this process's uid for
// its own loopback connection.
func TestSockDiagUID(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("sock_diag is Linux only")
	}
	f := startFixture(t, fmt.Sprintf(uidYAML, os.Getuid()), fixtureOpts{uid: SockDiagUID()})
	c := newClient(t, "127.0.0.1")
	r := f.call(t, c, http.MethodGet, "/creds", "", nil)
	if r.status == http.StatusForbidden {
		t.Skipf("sock_diag lookup unavailable here (netlink refused): %s", r.body)
	}
	if r.status != http.StatusOK {
		t.Fatalf("uid %d: %d %s", os.Getuid(), r.status, r.body)
	}
}
