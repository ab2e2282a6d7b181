package agent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent/sched"
)

// entry is one cached session. Its credentials are swapped atomically, so
// callers keep reading the current ones while a renewal runs.
type entry struct {
	key     string
	role    *role
	client  string
	session string
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
	// installedNs is when the current credentials were installed.
	installedNs atomic.Int64

	mu       sync.Mutex
	failures int32
	// counted: the entry is in its client's count of cached sessions
	// (fair.go); count and uncount are idempotent through it, whichever
	// of install and eviction runs first.
	counted atomic.Bool
	// retired: nobody used the session since its last renewal, so it is
	// not renewed in the background and ages out.
	retired atomic.Bool
	pending bool // a renewal is running or a retry is armed
	gone    bool // evicted or dropped: never renew again
	// slot is 1 + the render slot of the first body rendered from the
	// entry's credentials (0: none yet): its renewals are rendered into
	// it before they are published (render.go).
	slot uint8

	// The entry's one deadline in the agent's dueQueue, guarded by the
	// queue's lock: what runs (dueKind), its place in the heap (1-based,
	// 0: none armed), when (unix ns), the order it was armed in, and for
	// a retry when the renewal failed (unix ns). Small fields first: the
	// entry fits a 176-byte allocation.
	dueKind  dueKind
	dueIdx   int32
	dueAt    int64
	dueSeq   uint64
	failedAt int64
}

// current is an entry's credentials and when to renew them.
type current struct {
	creds     *Credentials
	refreshAt time.Time
}

// newEntry is a not yet cached session of role r for caller c of cl.
func (a *Agent) newEntry(st *state, cl *client, r *role, id sessionID, c *Caller) *entry {
	e := &entry{key: id.key, role: r, client: cl.name, session: id.name, tags: id.tags}
	if r.via != nil {
		// Each hop is cached too; a renewal asks the cache for the previous
		// hop's current credentials rather than reusing ones that may have
		// expired since. (A warm-up's previous hop is fetched as a
		// caller's would be: chains are short and rare.)
		cc := *c
		e.via = func(ctx context.Context) (*Credentials, error) { return a.get(ctx, st, cl, r.via, &cc) }
	}
	return e
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

// install makes creds the entry's current credentials, caches the entry, and
// arms its renewal.
func (a *Agent) install(e *entry, creds *Credentials) {
	now := a.clk.Now()
	at := sched.RefreshAt(now, creds.Expiration, a.rnd())
	// A source handing the same value out twice (a test's fake) gets no
	// pre-render: only fresh, unpublished credentials are finished here.
	if creds.owner.CompareAndSwap(nil, e) {
		e.prerender(creds)
	}
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
			// Replacing a value does not call onEvict: the entry it
			// replaces is ended here, or its deadline would hold it in
			// the queue until it expired, and a renewal of it, were it
			// touched meanwhile, would install it back over e.
			a.uncount(prev)
			a.end(prev)
		}
		a.count(e)
		a.fair.room.Unlock()
	}
	a.arm(e, at.Sub(now), dueRefresh, 0)
	a.log.Info("credentials issued",
		zap.String("client", e.client), zap.String("role", e.role.cfg.Name),
		zap.String("session", e.session),
		zap.Time("expiration", creds.Expiration),
		zap.String("key_id_last4", creds.KeyIDSuffix()))
}

// noteOutcome keeps the source's streak of consecutive retryable
// failures: STS failing for one session is failing for all of them, so a
// session failing for the first time mid-outage backs off as if it had
// failed all along (sched.Backoff), instead of adding a fresh burst of
// quick retries to a failing STS. Any success ends the streak.
func (a *Agent) noteOutcome(err error) {
	var se *SourceError
	switch {
	case err == nil:
		a.fair.streak.Store(0)
	case errors.As(err, &se) && !se.Retryable:
		// A refusal says nothing about STS's health.
	default:
		a.fair.streak.Add(1)
	}
}

// rememberUntil extends key's negative-cache entry (written by retrieve's
// failure) to until.
func (a *Agent) rememberUntil(key string, until time.Time) {
	a.negMu.Lock()
	defer a.negMu.Unlock()
	if n, ok := a.neg.Peek(key); ok && n.until.Before(until) {
		n.until = until
		a.neg.Add(key, n)
	}
}

// arm sets the entry's one deadline (replacing any other): after d, kind
// runs (see dueQueue).
func (a *Agent) arm(e *entry, d time.Duration, kind dueKind, failedAt int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return
	}
	if a.due.arm(e, d, kind, failedAt) && kind != dueRetry {
		// A caller's fetch installed fresh credentials while a failed
		// renewal's retry was armed: that retry, which would have
		// cleared pending, never runs now, and a pending left set would
		// turn every later renewal away (refreshSoon, renew).
		e.pending = false
	}
}

// runDue runs what an entry's deadline armed (the dueQueue's callback).
func (a *Agent) runDue(e *entry, kind dueKind, failedAt int64) {
	switch kind {
	case dueRefresh:
		a.onRefreshDue(e)
	case dueExpire:
		a.onRetiredExpiry(e)
	case dueRetry:
		a.retryDue(e, failedAt)
	}
}

// onEvict is the LRU's eviction callback: the entry leaves the read side
// and its refresher stops.
func (a *Agent) onEvict(key string, e *entry) {
	a.entries.CompareAndDelete(key, e)
	a.uncount(e)
	if ns := e.lastUsedNs.Load(); ns > 0 {
		// Its client asked here: remembered for the next warm-up's choice.
		a.noteAsked(e.client, time.Unix(0, ns))
	}
	a.end(e)
}

// end marks e gone from the cache and cancels its deadline: it is neither
// renewed nor installed again.
func (a *Agent) end(e *entry) {
	e.mu.Lock()
	e.gone = true
	a.due.cancel(e)
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
		a.arm(e, creds.Expiration.Sub(a.clk.Now()), dueExpire, 0)
		return
	}
	a.renew(e)
}

// onRetiredExpiry removes a retired session once its credentials have
// expired. Credentials installed since (a caller renewed it) re-armed the
// entry's deadline; should this run anyway, they are not expired and stay.
func (a *Agent) onRetiredExpiry(e *entry) {
	creds := e.credsNow()
	if creds == nil {
		return
	}
	if left := creds.Expiration.Sub(a.clk.Now()); left > 0 {
		// Woken early (a wall clock that moved back): wait the rest.
		if e.retired.Load() {
			a.arm(e, left, dueExpire, 0)
		}
		return
	}
	a.lru.Remove(e.key)
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
	err := errNotProbing
	if a.probeDue() {
		_, err, _ = a.flight.Do(e.key, func() (any, error) { return a.retrieve(e, sched.Renewal) })
	}
	e.mu.Lock()
	e.pending = false
	if err == nil || e.gone {
		e.mu.Unlock()
		return
	}
	skipped := err == errNotProbing
	if !skipped {
		e.failures++
	}
	// A session's first failure in an outage backs off as far as the
	// source's streak: its retries add load, not news.
	n := max(int(e.failures), int(min(a.fair.streak.Load(), 64)))
	e.pending = true
	e.mu.Unlock()
	failedAt := a.clk.Now()
	var left time.Duration
	if creds := e.credsNow(); creds != nil {
		left = creds.Expiration.Sub(failedAt)
	}
	delay := sched.Backoff(n, left, a.rnd())
	if !skipped {
		a.metrics.RefreshFailure()
		a.probed(failedAt.Add(delay))
	}
	if left > 0 {
		// Callers near expiry, served the cached credentials, ask again
		// only when this retry is due: their foreground fetches would be
		// one more call per session every cache.error_ttl on a failing
		// STS, the fleet's largest load in an outage (bench/fleet).
		// Callers with nothing valid cached still retry every error_ttl.
		a.rememberUntil(e.key, failedAt.Add(delay))
	}
	a.arm(e, delay, dueRetry, failedAt.UnixNano())
}

// retryDue runs when a failed renewal's backoff is over: it retries,
// unless the session is dead (expired, and unused since the failure).
func (a *Agent) retryDue(e *entry, failedAt int64) {
	e.mu.Lock()
	e.pending = false
	e.mu.Unlock()
	creds := e.credsNow()
	if creds != nil && !a.clk.Now().Before(creds.Expiration) && e.lastUsedNs.Load() < failedAt {
		a.lru.Remove(e.key)
		return
	}
	a.renew(e)
}

// errNotProbing: a renewal was not tried because STS is failing and
// another session's retry is the one probing it.
var errNotProbing = errors.New("not probing: STS is failing and another renewal probes it")

// probeDue reports whether a background renewal may call the source now
// (sched.ProbeDue): always while it is healthy; while it fails, one
// renewal at a time, when the last probe's backoff is over. It reserves
// the probe until the call's deadline.
func (a *Agent) probeDue() bool {
	f := &a.fair
	f.mu.Lock()
	defer f.mu.Unlock()
	now := a.clk.Now()
	if !sched.ProbeDue(int(f.streak.Load()), now, f.nextProbe) {
		return false
	}
	if f.streak.Load() > 0 {
		f.nextProbe = now.Add(a.timeout)
	}
	return true
}

// probed sets when the next probe of a failing source is due.
func (a *Agent) probed(next time.Time) {
	a.fair.mu.Lock()
	a.fair.nextProbe = next
	a.fair.mu.Unlock()
}
