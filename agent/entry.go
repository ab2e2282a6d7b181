package agent

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/cut"
)

// entry is one cached session. Its credentials are swapped atomically, so
// callers keep reading the current ones while a renewal runs.
type entry struct {
	key         string
	fingerprint string
	role        *role
	client      string
	session     string
	// tags are the session's rendered tags (nil: the role's own).
	tags []Tag
	// via returns the previous hop's current credentials (chained roles only).
	via func(context.Context) (*Credentials, error)

	// cur holds the credentials with their refresh point, swapped as one
	// so a reader never pairs old credentials with a new refresh point.
	cur atomic.Pointer[current]
	// lastUsedNs is the last hit recorded (unix ns, coarse: see touch).
	lastUsedNs atomic.Int64
	lastTouch  atomic.Int64
	// counted: the entry is in its client's count of cached sessions
	// (fair.go); count and uncount are idempotent through it, whichever
	// of install and eviction runs first.
	counted atomic.Bool
	// installedNs is when the current credentials were installed.
	installedNs atomic.Int64
	// retired: nobody used the session since its last renewal, so it is
	// not renewed in the background and ages out.
	retired atomic.Bool

	mu       sync.Mutex
	timer    clock.Timer
	pending  bool // a renewal is running or a retry is armed
	failures int
	gone     bool // evicted or dropped: never renew again
}

// current is an entry's credentials and when to renew them.
type current struct {
	creds     *Credentials
	refreshAt time.Time
}

// load returns the entry's credentials and refresh point (nil if none yet).
func (e *entry) load() (*Credentials, time.Time) {
	c := e.cur.Load()
	if c == nil {
		return nil, time.Time{}
	}
	return c.creds, c.refreshAt
}

// credsNow returns the entry's current credentials.
func (e *entry) credsNow() *Credentials {
	c, _ := e.load()
	return c
}

// touch records a hit. It updates the LRU's recency at most once per
// touchEvery, keeping the LRU's lock off nearly every hit.
func (e *entry) touch(a *Agent, now time.Time) {
	ns := now.UnixNano()
	if ns-e.lastTouch.Load() < int64(touchEvery) {
		return
	}
	e.lastTouch.Store(ns)
	e.lastUsedNs.Store(ns)
	a.lru.Get(e.key)
}

// refreshAt is the refresh policy: renew no earlier than half the lifetime
// and no later than two thirds of it or refreshMargin before expiry,
// whichever comes first; if that is before the half-life point, at half-life
// (so short sessions do not renew in a loop). Jitter spreads a fleet.
func refreshAt(now, exp time.Time, jitter float64) time.Time {
	life := exp.Sub(now)
	if life <= 0 {
		return now
	}
	earliest := now.Add(life / 2)
	latest := now.Add(life * 2 / 3)
	if m := exp.Add(-refreshMargin); m.Before(latest) {
		latest = m
	}
	if latest.Before(earliest) {
		latest = earliest
	}
	return earliest.Add(time.Duration(jitter * float64(latest.Sub(earliest))))
}

// install makes creds the entry's current credentials, caches the entry, and
// arms its renewal.
func (a *Agent) install(e *entry, creds *Credentials) {
	now := a.clk.Now()
	at := refreshAt(now, creds.Expiration, a.rnd())
	e.cur.Store(&current{creds: creds, refreshAt: at})
	e.lastTouch.Store(0)
	e.installedNs.Store(now.UnixNano())
	e.retired.Store(false)
	e.mu.Lock()
	gone := e.gone
	e.failures = 0
	e.mu.Unlock()
	if gone {
		return
	}
	if cur, ok := a.entries.Load(e.key); !ok || cur.(*entry) != e {
		// One insertion at a time: making room and adding are one step, so
		// the LRU never evicts on its own (bypassing the fair choice).
		a.fair.room.Lock()
		prev, had := a.lru.Peek(e.key)
		if !had {
			a.makeRoom(e.client, a.state.Load().cfg.Cache.MaxEntries)
		}
		a.entries.Store(e.key, e)
		a.lru.Add(e.key, e) // replacing a value does not call onEvict
		if had && prev != e {
			a.uncount(prev) // replacing a value does not call onEvict
		}
		a.count(e)
		a.fair.room.Unlock()
	}
	a.arm(e, at.Sub(now), a.onRefreshDue)
	a.log.Info("credentials issued",
		zap.String("client", e.client), zap.String("role", e.role.cfg.Name),
		zap.String("session", e.session),
		zap.Time("expiration", creds.Expiration),
		zap.String("key_id_last4", creds.KeyIDSuffix()))
}

// arm replaces the entry's timer.
func (a *Agent) arm(e *entry, d time.Duration, f func(*entry)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return
	}
	if e.timer != nil {
		e.timer.Stop()
	}
	if d < 0 {
		d = 0
	}
	e.timer = a.clk.AfterFunc(d, func() { f(e) })
}

// onEvict is the LRU's eviction callback: the entry leaves the read side
// and its refresher stops.
func (a *Agent) onEvict(key string, e *entry) {
	a.entries.CompareAndDelete(key, e)
	a.uncount(e)
	e.mu.Lock()
	e.gone = true
	if e.timer != nil {
		e.timer.Stop()
	}
	e.mu.Unlock()
}

// onRefreshDue runs at the entry's refresh point. A session nobody asked
// for since it was issued is retired: not renewed, removed at expiry.
func (a *Agent) onRefreshDue(e *entry) {
	creds := e.credsNow()
	if creds == nil {
		return
	}
	if e.lastUsedNs.Load() < e.installedNs.Load() {
		e.retired.Store(true)
		a.arm(e, creds.Expiration.Sub(a.clk.Now()), func(e *entry) {
			if e.credsNow() == creds {
				a.lru.Remove(e.key)
			}
		})
		return
	}
	a.renew(e)
}

// refreshSoon starts a background renewal unless one is pending.
func (a *Agent) refreshSoon(e *entry) {
	e.mu.Lock()
	if e.pending || e.gone {
		e.mu.Unlock()
		return
	}
	e.pending = true
	e.mu.Unlock()
	if !a.track() {
		e.mu.Lock()
		e.pending = false
		e.mu.Unlock()
		return
	}
	go func() {
		defer a.wg.Done()
		a.renewLocked(e)
	}()
}

// renew runs one background renewal synchronously (in the timer's goroutine).
func (a *Agent) renew(e *entry) {
	e.mu.Lock()
	if e.pending || e.gone {
		e.mu.Unlock()
		return
	}
	e.pending = true
	e.mu.Unlock()
	a.renewLocked(e)
}

// renewLocked does the renewal of an entry marked pending; on failure it
// arms a retry with capped exponential backoff and full jitter.
func (a *Agent) renewLocked(e *entry) {
	if a.ctx.Err() != nil {
		return
	}
	_, err, _ := a.flight.Do(e.key, func() (any, error) { return a.retrieve(e, false) })
	e.mu.Lock()
	e.pending = false
	if err == nil || e.gone {
		e.mu.Unlock()
		return
	}
	e.failures++
	n := e.failures
	e.pending = true
	e.mu.Unlock()
	a.metrics.RefreshFailure()
	ceiling := float64(backoffBase) * math.Pow(2, float64(min(n-1, 16)))
	ceiling = min(ceiling, float64(backoffCap))
	delay := time.Duration(a.rnd() * ceiling)
	failedAt := a.clk.Now()
	a.arm(e, delay, func(e *entry) {
		e.mu.Lock()
		e.pending = false
		e.mu.Unlock()
		creds := e.credsNow()
		// Dead sessions stop being retried once expired and unused.
		if creds != nil && !a.clk.Now().Before(creds.Expiration) && e.lastUsedNs.Load() < failedAt.UnixNano() {
			a.lru.Remove(e.key)
			return
		}
		a.renew(e)
	})
}

// warmUp fetches each client's default-role session in the background, so
// an SDK's first call (one second, one attempt for botocore and JS) hits.
func (a *Agent) warmUp(st *state) {
	run := a.beginWarm()
	defer run.end()
	for _, cl := range st.clients {
		r := st.roles[cl.defaultRole]
		id, ok := cl.sessions[cl.defaultRole]
		if r == nil || !ok {
			continue // per-caller session names cannot be known in advance
		}
		if _, ok := a.entries.Load(id.key); ok {
			continue
		}
		if !a.track() {
			return
		}
		run.add()
		go func() {
			defer a.wg.Done()
			defer run.end()
			ctx, cancel := withClockTimeout(a.ctx, a.clk, a.timeout)
			defer cancel()
			if _, err := a.get(ctx, st, cl, r, &Caller{}); err != nil && a.ctx.Err() == nil {
				a.log.Warn("warm-up fetch failed", zap.String("client", cl.name), zap.String("role", r.cfg.Name), zap.String("error", cut.String(err.Error(), maxLoggedError)))
			}
		}()
	}
}
