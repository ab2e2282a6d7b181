package imds

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/time/rate"

	"github.com/credsidecar/credsidecar/config"
)

// limiterSet holds one token bucket per caller: per client name for
// identified callers, per source address (in a bounded LRU) for the rest,
// so that one misbehaving caller cannot starve the others.
type limiterSet struct {
	rps     rate.Limit
	burst   int
	clients sync.Map // client name -> *rate.Limiter
	addrs   *lru.Cache[string, *rate.Limiter]
	mu      sync.Mutex // serializes creation in addrs
}

// maxAddrLimiters bounds the per-address buckets of unidentified callers.
const maxAddrLimiters = 4096

func newLimiterSet(l config.Limits) *limiterSet {
	if l.PerClientRPS <= 0 {
		return nil
	}
	addrs, _ := lru.New[string, *rate.Limiter](maxAddrLimiters)
	return &limiterSet{rps: rate.Limit(l.PerClientRPS), burst: max(l.Burst, 1), addrs: addrs}
}

func (ls *limiterSet) get(client, addr string) *rate.Limiter {
	if client != "" {
		if v, ok := ls.clients.Load(client); ok {
			return v.(*rate.Limiter)
		}
		v, _ := ls.clients.LoadOrStore(client, rate.NewLimiter(ls.rps, ls.burst))
		return v.(*rate.Limiter)
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.addrs.Get(addr); ok {
		return l
	}
	l := rate.NewLimiter(ls.rps, ls.burst)
	ls.addrs.Add(addr, l)
	return l
}

// limited wraps h with the per-caller rate limit of limits.per_client_rps;
// when the limit is off it costs one atomic load.
func (s *Server) limited(ep string, withToken bool, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ls := s.limits.Load()
		if ls == nil {
			h(w, r)
			return
		}
		c := s.caller(r, withToken)
		client, _ := s.agent.Identify(c)
		res := ls.get(client, c.Addr.String()).Reserve()
		if d := res.Delay(); d > 0 {
			res.Cancel()
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
			s.fail(w, ep, time.Now(), http.StatusTooManyRequests, "TooManyRequests", "request rate limit exceeded for this caller; retry later")
			return
		}
		h(w, r)
	}
}
