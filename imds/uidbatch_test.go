package imds

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
)

// TestUIDLookupsCoalesce: a flood of concurrent lookups (a local user
// opening connections faster than sock_diag answers them) costs at most
// `direct` single lookups plus a few dumps, and every caller gets its own
// socket's owner.
func TestUIDLookupsCoalesce(t *testing.T) {
	owner := func(p sockPair) sockOwner { return sockOwner{State: 1, UID: uint32(p.client.Port()), Inode: 7} }
	release := make(chan struct{})
	var dumpMu sync.Mutex
	var dumped int
	c := newUIDCoalescer(
		func(p sockPair) (sockOwner, error) { <-release; return owner(p), nil },
		func(want map[sockPair]bool) (map[sockPair]sockOwner, error) {
			dumpMu.Lock()
			dumped += len(want)
			dumpMu.Unlock()
			got := map[sockPair]sockOwner{}
			for p := range want {
				got[p] = owner(p)
			}
			return got, nil
		})
	const n = 2000
	server := netip.MustParseAddrPort("127.0.0.1:8169")
	results := make(chan error, n)
	for i := range n {
		go func() {
			p := sockPair{client: netip.AddrPortFrom(netip.MustParseAddr("::ffff:127.0.0.2"), uint16(10000+i)), server: server}
			o, err := c.lookup(p)
			if err == nil && o.UID != uint32(10000+i) {
				err = fmt.Errorf("lookup %d: got the owner of another socket: %+v", i, o)
			}
			results <- err
		}()
	}
	// The direct lookups hold their slots until every other lookup has
	// been answered by a dump.
	for range n - c.direct {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	for range c.direct {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	dumpMu.Lock()
	if dumped != n-c.direct {
		t.Errorf("dumps were asked for %d sockets, want %d", dumped, n-c.direct)
	}
	dumpMu.Unlock()
	gets, dumps := c.gets.Load(), c.dumps.Load()
	t.Logf("%d concurrent lookups: %d single sock_diag lookups and %d dumps (one lookup each before)", n, gets, dumps)
	if gets != int64(c.direct) || dumps > 20 {
		t.Fatalf("%d single lookups and %d dumps for %d lookups", gets, dumps, n)
	}
}
