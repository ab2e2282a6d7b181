// Package connlimit bounds the connections a listener holds, so that no
// crowd of local callers can exhaust the process's file descriptors or
// memory. Any local user may connect to the sidecar, and most match no
// client; an unbounded listener let one unprivileged user hold ~21 000 idle
// keep-alive connections, after which trusted callers and /healthz got no
// answer at all. Here:
//   - the listener holds at most Max connections, a bound kept below the
//     descriptor limit with headroom for everything else the process opens;
//   - at the bound, a new connection makes room by closing one that is
//     cheap to lose — the oldest that has not carried a trusted caller,
//     else the longest-idle trusted one — and only when every held
//     connection carries a trusted caller mid-request is the new one
//     refused;
//   - once the listener is half full, each source (an address prefix: see
//     Options.Source) holds at most PerSource connections, so one
//     container cannot take the room by itself;
//   - accept errors (EMFILE under pressure from elsewhere) back off instead
//     of spinning, and are logged at most once per second.
//
// The front end marks a connection trusted (MarkTrusted on the net.Conn
// Accept returned) once a request on it matched a client.
package connlimit

import (
	"container/list"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Options configure a Limiter; zero values take the defaults.
type Options struct {
	// Max bounds the connections held (default DefaultMax, and never more
	// than the descriptor limit allows: see FDBound).
	Max int
	// PerSource bounds one source's connections once half of Max is held
	// (default DefaultPerSource).
	PerSource int
	// Source names the source of a connection (e.g. "net:169.254.170.10/32");
	// "" leaves it unclassified (bounded by Max only), and nil classifies
	// none. It is called only once the listener is half full, and must be
	// cheap: it runs in the accept loop.
	Source func(net.Conn) string
	// Logger receives the limiter's warnings, rate-limited.
	Logger *zap.Logger
	// Name labels log lines ("credentials", "admin", "sts").
	Name string
}

// Defaults: 2048 idle keep-alive connections of net/http cost about 40 MiB
// (a goroutine and two 4 KiB buffers each), well under a node's budget.
const (
	DefaultMax       = 2048
	DefaultPerSource = 256
	// fdHeadroom is kept free below the descriptor limit for everything
	// else: the other listeners, STS calls, config and token files, logs.
	fdHeadroom = 256
)

// FDBound is the most connections a limiter may hold under the process's
// descriptor limit (Go raises the soft limit to the hard one at start),
// sharing it with others limiters: each gets its share of what is left
// after the headroom.
func FDBound(share float64) int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return DefaultMax
	}
	n := int(float64(int64(rl.Cur)-fdHeadroom) * share)
	return max(n, 16)
}

// Limiter bounds the connections of the listeners it wraps.
type Limiter struct {
	max, perSource int
	source         func(net.Conn) string
	log            *zap.Logger
	name           string

	mu       sync.Mutex
	conns    map[*Conn]struct{}
	bySource map[string]int
	// held is len(conns) and half is max/2, readable without the mutex:
	// admit's pressure check takes no lock.
	held, half atomic.Int64
	// tick orders events: admissions and connections going idle. Only
	// their order matters (which connection has been idle longest), so a
	// counter does instead of the clock: a time.Now on every request's
	// StateIdle was ~70-100 ns of the keep-alive path.
	tick atomic.Uint64
	// untrusted lists the held connections that never carried a trusted
	// caller, oldest first: the first to close at the bound, in O(1).
	untrusted list.List
	// trustedBy counts trusted connections per client: a client holds at
	// most perSource of them, so a hostile user who has a client of their
	// own cannot make every held connection unclosable.
	trustedBy map[string]int

	evicted, refused atomic.Int64
	lastWarn         atomic.Int64
}

// New builds a limiter.
func New(opts Options) *Limiter {
	l := &Limiter{max: opts.Max, perSource: opts.PerSource, source: opts.Source, log: opts.Logger, name: opts.Name,
		conns: map[*Conn]struct{}{}, bySource: map[string]int{}, trustedBy: map[string]int{}}
	l.untrusted.Init()
	if l.max <= 0 {
		l.max = DefaultMax
	}
	if l.perSource <= 0 {
		l.perSource = DefaultPerSource
	}
	if l.log == nil {
		l.log = zap.NewNop()
	}
	l.half.Store(int64(l.max / 2))
	return l
}

// Conn is a connection the limiter admitted.
type Conn struct {
	net.Conn
	l      *Limiter
	source string
	seq    uint64 // admission tick: lower is older
	// admitted is when the connection was accepted (unix ns).
	admitted int64
	// trustedAs is the client the connection carried ("" while untrusted);
	// guarded by the limiter's mutex.
	trustedAs string
	trusted   atomic.Bool
	// elem is the connection's place in untrusted (nil once trusted or
	// released); guarded by the limiter's mutex.
	elem *list.Element
	// state is the last http.ConnState (as int32); idleSince is the tick
	// at which the connection last went idle.
	state     atomic.Int32
	idleSince atomic.Uint64
	once      sync.Once
	// onClose runs once when the connection closes (OnClose).
	onClose atomic.Pointer[func()]
}

// MarkTrusted records that a request on the connection was served to
// client: it is then closed to make room only after every untrusted one —
// unless client already holds its share (PerSource) of trusted
// connections, in which case it stays among the closable ones.
func (c *Conn) MarkTrusted(client string) {
	if c.trusted.Load() {
		return
	}
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.trustedAs != "" || c.elem == nil || l.trustedBy[client] >= l.perSource {
		return
	}
	l.untrusted.Remove(c.elem)
	c.elem = nil
	c.trustedAs = client
	l.trustedBy[client]++
	c.trusted.Store(true)
}

// NetConn is the underlying connection (socket options such as the IMDS
// hop limit are set on it).
func (c *Conn) NetConn() net.Conn { return c.Conn }

// OnClose makes f run once, when the connection closes (replacing an f
// set before): the front end tells whoever described the connection's
// peer that its connection is gone.
func (c *Conn) OnClose(f func()) { c.onClose.Store(&f) }

// Close closes the connection and releases its place.
func (c *Conn) Close() error {
	c.l.release(c)
	err := c.Conn.Close()
	if f := c.onClose.Swap(nil); f != nil {
		(*f)()
	}
	return err
}

// Stats are the limiter's counters.
type Stats struct {
	Open, Evicted, Refused int
}

// Stats returns the current counters.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{Open: len(l.conns), Evicted: int(l.evicted.Load()), Refused: int(l.refused.Load())}
}

// Max is the bound in force.
func (l *Limiter) Max() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max
}

// SetLimits changes the bounds (a reload); zero values take the defaults.
// Connections above a lowered bound are not closed: they make room as they
// go.
func (l *Limiter) SetLimits(maxConns, perSource int) {
	if maxConns <= 0 {
		maxConns = DefaultMax
	}
	if perSource <= 0 {
		perSource = DefaultPerSource
	}
	l.mu.Lock()
	l.max, l.perSource = maxConns, perSource
	l.half.Store(int64(maxConns / 2))
	l.mu.Unlock()
}

// ConnState is http.Server.ConnState: it tells idle connections (cheap to
// close) from busy ones.
func (l *Limiter) ConnState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*Conn)
	if !ok {
		return
	}
	switch st {
	case http.StateIdle:
		c.idleSince.Store(l.tick.Add(1))
	case http.StateClosed, http.StateHijacked:
		l.release(c)
	}
	c.state.Store(int32(st))
}

func (l *Limiter) release(c *Conn) {
	c.once.Do(func() {
		l.mu.Lock()
		l.dropLocked(c)
		l.mu.Unlock()
	})
}

// dropLocked forgets c.
func (l *Limiter) dropLocked(c *Conn) {
	if _, ok := l.conns[c]; ok {
		delete(l.conns, c)
		l.held.Add(-1)
	}
	if c.elem != nil {
		l.untrusted.Remove(c.elem)
		c.elem = nil
	}
	if c.trustedAs != "" {
		if l.trustedBy[c.trustedAs]--; l.trustedBy[c.trustedAs] <= 0 {
			delete(l.trustedBy, c.trustedAs)
		}
		c.trustedAs = ""
	}
	if c.source != "" {
		if l.bySource[c.source]--; l.bySource[c.source] <= 0 {
			delete(l.bySource, c.source)
		}
	}
}

// admit decides on a new connection: it returns the admitted Conn (and a
// connection closed to make room, if any), or nil when the new one is
// refused.
func (l *Limiter) admit(nc net.Conn) (*Conn, *Conn) {
	source := ""
	if l.held.Load() >= l.half.Load() && l.source != nil {
		// Classified only under pressure: a source lookup (sock_diag)
		// per connection is not free.
		source = l.source(nc)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if source != "" && l.bySource[source] >= l.perSource {
		return nil, nil
	}
	var victim *Conn
	if len(l.conns) >= l.max {
		if victim = l.victimLocked(); victim == nil {
			return nil, nil
		}
		l.dropLocked(victim)
		victim.once.Do(func() {}) // released here, under the lock
	}
	c := &Conn{Conn: nc, l: l, source: source, seq: l.tick.Add(1), admitted: time.Now().UnixNano()}
	c.state.Store(int32(http.StateNew))
	l.conns[c] = struct{}{}
	l.held.Add(1)
	c.elem = l.untrusted.PushBack(c)
	if source != "" {
		l.bySource[source]++
	}
	return c, victim
}

// victimLocked picks the connection cheapest to lose: the oldest that never
// carried a trusted caller (in O(1): the accept loop must keep up with a
// flood, or the kernel's accept queue overflows and trusted callers' SYNs
// are dropped); failing that, the longest-idle trusted one (a scan, only
// when every held connection is trusted). A trusted connection
// mid-request is never picked.
func (l *Limiter) victimLocked() *Conn {
	if e := l.untrusted.Front(); e != nil {
		c := e.Value.(*Conn)
		// A young connection mid-request may be a trusted caller whose
		// first request is still being identified: prefer an idle trusted
		// connection to it, if there is one.
		if http.ConnState(c.state.Load()) != http.StateActive || time.Now().UnixNano()-c.admitted > int64(activeGrace) {
			return c
		}
		if t := l.idlestTrustedLocked(); t != nil {
			return t
		}
		return c
	}
	return l.idlestTrustedLocked()
}

// activeGrace is how long a new connection's first request is spared.
const activeGrace = 2 * time.Second

// idlestTrustedLocked is the longest-idle trusted connection (nil if none
// is idle): a scan, on the rare path only.
func (l *Limiter) idlestTrustedLocked() *Conn {
	var best *Conn
	var bestKey uint64
	for c := range l.conns {
		st := http.ConnState(c.state.Load())
		if c.trustedAs == "" || (st != http.StateIdle && st != http.StateNew) {
			continue
		}
		// Both keys are ticks: a connection that never served a request
		// counts as idle since it was admitted.
		key := c.seq
		if st == http.StateIdle {
			key = c.idleSince.Load()
		}
		if best == nil || key < bestKey {
			best, bestKey = c, key
		}
	}
	return best
}

// Listener wraps inner so that every connection it accepts is admitted by
// the limiter.
func (l *Limiter) Listener(inner net.Listener) net.Listener {
	return &listener{Listener: inner, l: l}
}

type listener struct {
	net.Listener
	l *Limiter
}

func (ln *listener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Listener.Accept()
		if err != nil {
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) {
				// Out of descriptors because of something else: wait
				// instead of spinning, and say so once a second at most.
				ln.l.warn("accept failed; backing off", zap.Error(err))
				time.Sleep(backoff)
				backoff = min(backoff*2, time.Second)
				continue
			}
			return nil, err
		}
		backoff = 5 * time.Millisecond
		c, victim := ln.l.admit(nc)
		if victim != nil {
			ln.l.evicted.Add(1)
			victim.Conn.Close()
		}
		if c == nil {
			ln.l.refused.Add(1)
			ln.l.warn("connection refused: the listener is full of trusted callers or this source holds its share")
			nc.Close()
			continue
		}
		return c, nil
	}
}

// warn logs at most once a second, with the counters.
func (l *Limiter) warn(msg string, fields ...zap.Field) {
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(time.Second) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.mu.Lock()
	maxConns, perSource, open := l.max, l.perSource, len(l.conns)
	l.mu.Unlock()
	l.log.Warn(msg, append(fields, zap.String("listener", l.name), zap.Int("open", open),
		zap.Int("max_connections", maxConns), zap.Int("max_connections_per_source", perSource),
		zap.Int64("evicted_total", l.evicted.Load()), zap.Int64("refused_total", l.refused.Load()))...)
}
