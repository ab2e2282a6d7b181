package imds

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// sockOwner is what sock_diag says of a client socket.
type sockOwner struct {
	State uint8
	UID   uint32
	Inode uint32
}

// sockPair names a client socket by both endpoints, as seen from the
// client: its local address is our remote one.
type sockPair struct{ client, server netip.AddrPort }

// ErrUIDBusy marks a uid lookup that got no answer about the socket (the
// kernel's dump failed, or the answer took too long under load): unlike a
// definitive "unknown", it is worth asking again.
var ErrUIDBusy = errors.New("sock_diag gave no answer")

// errNoSocket is sock_diag's answer that no socket has the 4-tuple asked.
var errNoSocket = errors.New("sock_diag: no such socket")

// errDumpIncomplete is what a dump returns when the kernel interrupted it:
// what it holds is true, but sockets may be missing.
var errDumpIncomplete = errors.New("sock_diag dump interrupted")

// uidCoalescer bounds the sock_diag work that callers can make the sidecar
// do, before doing it. Each new connection whose uid a request needs costs
// one exact sock_diag lookup (a hash lookup in the kernel, about 2 µs
// here): cheap, but a flood of connections from a local user must not buy
// unbounded concurrent kernel work, nor delay trusted callers' lookups
// behind its own. Here at most `direct` lookups run at once (enough that
// a host's usual concurrency of new connections never waits); lookups
// beyond those join one batch, and batches start at most once per minGap.
// A batch of at most maxExact sockets is answered by exact lookups, one
// after the other; a bigger one by a single dump of the host's TCP
// sockets (which costs what walking them all costs, whatever the batch).
// Trusted callers' lookups are answered by the same batches, within about
// minGap, whatever the flood.
type uidCoalescer struct {
	get func(p sockPair) (sockOwner, error)
	// batchGet answers a small batch's sockets (get; tests tell them apart).
	batchGet func(p sockPair) (sockOwner, error)
	dump     func(want map[sockPair]bool) (map[sockPair]sockOwner, error)
	direct   int
	maxExact int
	minGap   time.Duration
	// wait bounds how long a lookup waits for its batch.
	wait time.Duration

	mu       sync.Mutex
	inflight int
	next     *uidBatch
	dumpMu   sync.Mutex // one dump at a time
	lastDump time.Time

	// gets, batched and dumps count the round trips made: direct
	// lookups, exact lookups answering a batch, and dumps; batches counts
	// the batches.
	gets, batched, dumps, batches atomic.Int64
}

type uidBatch struct {
	want map[sockPair]sockPair // unmapped, unzoned pair -> the pair as asked
	got  map[sockPair]sockOwner
	err  error              // the dump's
	errs map[sockPair]error // exact lookups' other than "no such socket"
	done chan struct{}
}

func unmapPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// plainPort is a as sock_diag reports it: unmapped, without an IPv6 zone
// (the kernel reports the interface apart).
func plainPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}

func newUIDCoalescer(get func(sockPair) (sockOwner, error), dump func(map[sockPair]bool) (map[sockPair]sockOwner, error)) *uidCoalescer {
	// direct and maxExact: measured with go run ./bench (8 concurrent cold
	// sequences): with 2 direct lookups, a fifth of the lookups waited
	// for a batch (about minGap) even with no flood.
	return &uidCoalescer{get: get, batchGet: get, dump: dump, direct: 8, maxExact: 64, minGap: 20 * time.Millisecond, wait: 5 * time.Second}
}

// lookup returns what sock_diag says of the client socket p: asked for as
// it is, or found in a dump by its unmapped addresses.
func (c *uidCoalescer) lookup(p sockPair) (sockOwner, error) {
	orig := p
	p = sockPair{plainPort(p.client), plainPort(p.server)}
	c.mu.Lock()
	if c.inflight < c.direct && c.next == nil {
		c.inflight++
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.inflight--
			c.mu.Unlock()
		}()
		c.gets.Add(1)
		return c.get(orig)
	}
	b := c.next
	if b == nil {
		b = &uidBatch{want: map[sockPair]sockPair{}, done: make(chan struct{})}
		c.next = b
		go c.run(b)
	}
	b.want[p] = orig
	c.mu.Unlock()
	t := time.NewTimer(c.wait)
	defer t.Stop()
	select {
	case <-b.done:
	case <-t.C:
		return sockOwner{}, fmt.Errorf("no answer within %s under load: %w", c.wait, ErrUIDBusy)
	}
	if o, ok := b.got[p]; ok {
		return o, nil
	}
	if err := b.errs[p]; err != nil {
		if errors.Is(err, ErrUIDBusy) {
			return sockOwner{}, err // already says so
		}
		return sockOwner{}, fmt.Errorf("%v: %w", err, ErrUIDBusy)
	}
	if b.err != nil {
		// The dump failed or was interrupted (heavy churn): the socket may
		// exist. No single lookup is made for it here — that would undo
		// the bound exactly under a flood — and the caller may ask again.
		return sockOwner{}, fmt.Errorf("%v: %w", b.err, ErrUIDBusy)
	}
	return sockOwner{}, errNoSocket
}

// run answers batch b, no sooner than minGap after the last: by exact
// lookups when it is small, else by one dump.
func (c *uidCoalescer) run(b *uidBatch) {
	c.dumpMu.Lock()
	defer c.dumpMu.Unlock()
	if d := time.Until(c.lastDump.Add(c.minGap)); d > 0 {
		// Lookups arriving meanwhile join this batch.
		time.Sleep(d)
	}
	c.mu.Lock()
	if c.next == b {
		c.next = nil
	}
	want := b.want // no one adds to it once it is not c.next
	c.mu.Unlock()
	c.batches.Add(1)
	if len(want) <= c.maxExact {
		b.got = make(map[sockPair]sockOwner, len(want))
		for p, orig := range want {
			c.batched.Add(1)
			o, err := c.batchGet(orig)
			switch {
			case err == nil:
				b.got[p] = o
			case !errors.Is(err, errNoSocket):
				// Not an answer about the socket: worth asking again.
				if b.errs == nil {
					b.errs = map[sockPair]error{}
				}
				b.errs[p] = err
			}
		}
	} else {
		c.dumps.Add(1)
		set := make(map[sockPair]bool, len(want))
		for p := range want {
			set[p] = true
		}
		b.got, b.err = c.dump(set)
	}
	c.lastDump = time.Now()
	close(b.done)
}
