package imds

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// TestUIDLookupsCoalesce: a flood of concurrent lookups (a local user
// opening connections faster than sock_diag answers them) costs at most
// `direct` lookups at once plus a few batches, each answered by exact
// lookups when small and by one dump when not, and every caller gets its
// own socket's owner.
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
	c.batchGet = func(p sockPair) (sockOwner, error) {
		if !p.client.Addr().Is4In6() {
			return sockOwner{}, fmt.Errorf("batch lookup of %v: not as asked", p)
		}
		return owner(p), nil
	}
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
	// been answered by a batch.
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
	defer dumpMu.Unlock()
	gets, batched, dumps, batches := c.gets.Load(), c.batched.Load(), c.dumps.Load(), c.batches.Load()
	t.Logf("%d concurrent lookups: %d direct, %d batches (%d exact lookups in them, %d dumps)", n, gets, batches, batched, dumps)
	if int(batched)+dumped != n-c.direct {
		t.Errorf("batches were asked for %d sockets (%d exact, %d in dumps), want %d", int(batched)+dumped, batched, dumped, n-c.direct)
	}
	if gets != int64(c.direct) || batches > 20 || batched > batches*int64(c.maxExact) {
		t.Fatalf("%d direct lookups, %d batches, %d exact lookups in them, for %d lookups", gets, batches, batched, n)
	}
}

// TestUIDBatchErrors: in a batch answered by exact lookups, "no such
// socket" is definitive and any other failure is worth asking again
// (ErrUIDBusy).
func TestUIDBatchErrors(t *testing.T) {
	release, entered := make(chan struct{}), make(chan struct{})
	defer close(release)
	c := newUIDCoalescer(
		func(p sockPair) (sockOwner, error) { close(entered); <-release; return sockOwner{}, nil },
		func(map[sockPair]bool) (map[sockPair]sockOwner, error) { return nil, errors.New("no dump expected") })
	c.direct = 1
	c.batchGet = func(p sockPair) (sockOwner, error) {
		switch p.client.Port() {
		case 1:
			return sockOwner{}, fmt.Errorf("wrapped: %w", errNoSocket)
		case 3:
			return sockOwner{}, fmt.Errorf("timed out: %w", ErrUIDBusy)
		}
		return sockOwner{}, errors.New("netlink broke")
	}
	server := netip.MustParseAddrPort("127.0.0.1:8169")
	go c.lookup(sockPair{netip.MustParseAddrPort("127.0.0.2:9"), server}) // holds the one direct slot
	<-entered
	if _, err := c.lookup(sockPair{netip.MustParseAddrPort("127.0.0.2:1"), server}); !errors.Is(err, errNoSocket) || errors.Is(err, ErrUIDBusy) {
		t.Errorf("no such socket: %v", err)
	}
	if _, err := c.lookup(sockPair{netip.MustParseAddrPort("127.0.0.2:2"), server}); !errors.Is(err, ErrUIDBusy) {
		t.Errorf("a failed lookup: %v, want ErrUIDBusy", err)
	}
	// An exact lookup that already says busy is passed on as it is, not
	// wrapped a second time.
	_, err := c.lookup(sockPair{netip.MustParseAddrPort("127.0.0.2:3"), server})
	if !errors.Is(err, ErrUIDBusy) || strings.Count(err.Error(), ErrUIDBusy.Error()) != 1 {
		t.Errorf("a busy lookup: %q, want ErrUIDBusy said once", err)
	}
}
