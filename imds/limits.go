package imds

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
)

// limiterSet holds one token bucket per caller, keyed on the request's
// trust decision: per client for identified callers; for callers that
// match no client, per local uid when the socket's owner is known (a user
// cannot mint uids), else per source network (a /8 of IPv4 loopback, a /64
// of IPv6: addresses a local user can multiply for free count as one),
// in a bounded LRU. One misbehaving caller cannot starve the others.
type limiterSet struct {
	rps     rate.Limit
	burst   int
	clients sync.Map // client name -> *rate.Limiter
	others  *lru.Cache[string, *rate.Limiter]
	mu      sync.Mutex // serializes creation in others
}

// maxOtherLimiters bounds the buckets of unidentified callers.
const maxOtherLimiters = 4096

func newLimiterSet(l config.Limits) *limiterSet {
	if l.PerClientRPS <= 0 {
		return nil
	}
	others, _ := lru.New[string, *rate.Limiter](maxOtherLimiters)
	return &limiterSet{rps: rate.Limit(l.PerClientRPS), burst: max(l.Burst, 1), others: others}
}

func (ls *limiterSet) client(name string) *rate.Limiter {
	if v, ok := ls.clients.Load(name); ok {
		return v.(*rate.Limiter)
	}
	v, _ := ls.clients.LoadOrStore(name, rate.NewLimiter(ls.rps, ls.burst))
	return v.(*rate.Limiter)
}

func (ls *limiterSet) other(key string) *rate.Limiter {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.others.Get(key); ok {
		return l
	}
	l := rate.NewLimiter(ls.rps, ls.burst)
	ls.others.Add(key, l)
	return l
}

// unidentifiedKey is the bucket of a caller that matches no client.
func unidentifiedKey(c *agent.Caller) string {
	if c.UID != nil {
		if uid, err := c.UID(); err == nil {
			return "uid:" + strconv.FormatUint(uint64(uid), 10)
		}
	}
	return networkKey(c.Addr)
}

// ConnSource names the source of a connection for the connection
// limiter, by address alone: a non-loopback address's prefix (a
// container's or pod's own address, which it cannot multiply). A loopback
// connection is "" (unclassified): its one meaningful source, the local
// uid, costs a sock_diag round trip (0.3-0.8 ms measured here), which at
// accept time under a flood backed the accept queue up for seconds. Local
// callers share the listener's bound, where connections that carried no
// trusted caller are closed first.
func ConnSource(c net.Conn) string {
	a, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return ""
	}
	addr := a.AddrPort().Addr().Unmap()
	if addr.IsLoopback() {
		return ""
	}
	return networkKey(addr)
}

// networkKey is an address's prefix: what one user can multiply for free
// (all of IPv4 loopback, an IPv6 /64) counts as one source.
func networkKey(addr netip.Addr) string {
	a := addr.Unmap()
	bits := 64
	switch {
	case a.Is4() && a.IsLoopback():
		bits = 8
	case a.Is4():
		bits = 32
	case a.IsLoopback():
		bits = 128 // ::1 is one address
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return "addr:invalid"
	}
	return "net:" + p.String()
}

// limit applies limits.per_client_rps to the identified caller; when the
// limit is off it costs one atomic load. The error carries Retry-After.
func (s *Server) limit(c *agent.Caller, id agent.Identity) error {
	ls := s.limits.Load()
	if ls == nil {
		return nil
	}
	var lim *rate.Limiter
	if id.Matched() {
		lim = ls.client(id.Client())
	} else {
		lim = ls.other(unidentifiedKey(c))
	}
	// One clock read for the reservation, its delay and its cancel
	// (Reserve, Delay and Cancel read it once each). It is read here, not
	// at the request's start: requests of one caller that reach the
	// limiter out of order (a slow uid lookup or JWT check) would move its
	// clock back and be handed the tokens of time already counted.
	now := time.Now()
	res := lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return &apiError{
			status: http.StatusTooManyRequests, code: "TooManyRequests",
			msg:        "request rate limit exceeded for this caller; retry later",
			retryAfter: max(int(math.Ceil(d.Seconds())), 1),
		}
	}
	return nil
}
