package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/credsidecar/credsidecar/agent/sched"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/cut"
	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// Bounds of what log lines and error messages carry, in bytes: a role
// name from a URL, an error text from a source (STS messages name ARNs
// and session names, all bounded, but the text is not ours).
const (
	maxLoggedRole  = 128
	maxLoggedError = 1024
)

// Refresh policy: the decisions are in package sched (RefreshAt, Backoff,
// Grant, WarmOrder); these are the agent's own knobs around them.
const (
	// waitWindow: a hit waits for a renewal only when its credentials have
	// less than this left.
	waitWindow = sched.WaitWindow
	// backoffCap bounds the retry delay after a failed renewal.
	backoffCap = sched.BackoffCap
	// touchEvery limits how often a hit updates the LRU's recency (which
	// takes the LRU's lock): often enough for eviction order, rarely
	// enough to keep the hot path lock-free.
	touchEvery = time.Second
	// negativeEntries bounds the negative cache.
	negativeEntries = 4096
)

// Metrics receives the agent's events. The metrics package implements it;
// nil means no metrics.
type Metrics interface {
	CacheHit()
	CacheMiss()
	STSRequest(operation, result string)
	RefreshFailure()
}

type nopMetrics struct{}

func (nopMetrics) CacheHit()              {}
func (nopMetrics) CacheMiss()             {}
func (nopMetrics) STSRequest(_, _ string) {}
func (nopMetrics) RefreshFailure()        {}

// Options are the agent's dependencies.
type Options struct {
	// Source obtains credentials (required).
	Source Source
	// Clock defaults to the wall clock.
	Clock clock.Clock
	// Logger defaults to a no-op logger.
	Logger *zap.Logger
	// Metrics defaults to none.
	Metrics Metrics
	// FetchTimeout is the deadline of one logical source call, detached from
	// any caller's context (default 10s).
	FetchTimeout time.Duration
	// Rand returns a float in [0,1) for jitter; defaults to math/rand/v2.
	Rand func() float64
	// DisableWarm turns off the warm-up (see warm.go) whatever
	// cache.warm_max says; tests of other things turn it off.
	DisableWarm bool
	// Node tells the warm-up what runs on this node (nil: nothing is
	// known, and clients are warmed by recency and file order).
	Node Node
}

// Agent hands out credentials. Create it with New; it is safe for
// concurrent use. Close stops its background work.
type Agent struct {
	src     Source
	clk     clock.Clock
	log     *zap.Logger
	metrics Metrics
	timeout time.Duration
	rnd     func() float64
	warm    bool

	state atomic.Pointer[state]
	// entries is the lock-free read side of the cache; lru owns bound and
	// recency and removes from entries on eviction.
	entries sync.Map // key -> *entry
	lru     *lru.Cache[string, *entry]
	// due holds every entry's next deadline, on one timer (due.go).
	due    dueQueue
	flight singleflight.Group
	budget atomic.Pointer[rate.Limiter]

	negMu sync.Mutex
	neg   *lru.Cache[string, negative]

	// fair shares the STS budget and the cache among clients (fair.go).
	fair fairness
	// warming remembers who asked and runs the warm-up (warm.go).
	warming warming

	ctx    context.Context
	cancel context.CancelFunc
	// closeMu and closed keep wg.Add from racing Close's wg.Wait.
	closeMu sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	// warmed tells when the latest warm-up has ended (ready.go).
	warmed warmSignal
}

type negative struct {
	err   error
	until time.Time
}

// New builds an agent for cfg.
func New(opts Options, cfg *config.Config) (*Agent, error) {
	if opts.Source == nil {
		return nil, errors.New("agent: a Source is required")
	}
	if cfg == nil {
		return nil, errors.New("agent: a config is required")
	}
	a := &Agent{
		src:     opts.Source,
		clk:     opts.Clock,
		log:     opts.Logger,
		metrics: opts.Metrics,
		timeout: opts.FetchTimeout,
		rnd:     opts.Rand,
		warm:    !opts.DisableWarm,
		warming: warming{node: opts.Node},
	}
	if a.clk == nil {
		a.clk = clock.Real{}
	}
	if a.log == nil {
		a.log = zap.NewNop()
	}
	if a.metrics == nil {
		a.metrics = nopMetrics{}
	}
	if a.timeout <= 0 {
		a.timeout = 10 * time.Second
	}
	if a.rnd == nil {
		a.rnd = rand.Float64
	}
	a.due.clk, a.due.run = a.clk, a.runDue
	a.ctx, a.cancel = context.WithCancel(context.Background())
	c, err := lru.NewWithEvict(cfg.Cache.MaxEntries, a.onEvict)
	if err != nil {
		return nil, fmt.Errorf("agent: create cache: %w", err)
	}
	a.lru = c
	a.neg, _ = lru.New[string, negative](negativeEntries)
	a.Apply(cfg)
	return a, nil
}

// Close stops refreshers and waits for background fetches to end.
func (a *Agent) Close() {
	a.closeMu.Lock()
	a.closed = true
	a.closeMu.Unlock()
	a.cancel()
	for _, k := range a.lru.Keys() {
		a.lru.Remove(k)
	}
	a.wg.Wait()
}

// Apply swaps in a new config atomically. Sessions of roles whose definition
// changed are dropped; those of unchanged roles are kept. The cache bound
// follows cache.max_entries.
func (a *Agent) Apply(cfg *config.Config) {
	st := compile(cfg)
	// The bound first: between the two, a larger one would let the LRU
	// evict on its own (bypassing the fair choice of makeRoom).
	a.lru.Resize(cfg.Cache.MaxEntries)
	a.state.Store(st)
	live := map[string]bool{}
	for _, r := range st.roles {
		live[r.fingerprint] = true
	}
	for _, k := range a.lru.Keys() {
		if e, ok := a.lru.Peek(k); ok && !live[e.role.fingerprint] {
			a.lru.Remove(k)
		}
	}
	a.negMu.Lock()
	a.neg.Purge()
	a.negMu.Unlock()
	if lim := a.budget.Load(); lim == nil || lim.Limit() != rate.Limit(cfg.STS.MaxQPS) {
		burst := int(cfg.STS.MaxQPS)
		if burst < 1 {
			burst = 1
		}
		a.budget.Store(rate.NewLimiter(rate.Limit(cfg.STS.MaxQPS), burst))
	}
	if a.warm {
		a.warmUp(st)
	}
}

// track adds one to the background work Close waits for, unless Close has
// begun.
func (a *Agent) track() bool {
	a.closeMu.Lock()
	defer a.closeMu.Unlock()
	if a.closed {
		return false
	}
	a.wg.Add(1)
	return true
}

// Config returns the config in force.
func (a *Agent) Config() *config.Config { return a.state.Load().cfg }

// Len is the number of cached sessions.
func (a *Agent) Len() int { return a.lru.Len() }

// EarliestExpiry is the earliest expiry among cached sessions (zero if none).
func (a *Agent) EarliestExpiry() time.Time {
	var min time.Time
	a.entries.Range(func(_, v any) bool {
		if c := v.(*entry).credsNow(); c != nil && (min.IsZero() || c.Expiration.Before(min)) {
			min = c.Expiration
		}
		return true
	})
	return min
}

// Identity is a caller identified against one config snapshot. It carries
// everything a front end needs to answer from that same snapshot (the
// client, its default role and account, the config), so one request makes
// one trust decision and no reload between two reads can make its answers
// disagree. An Identity whose caller matched no client (Resolve's error)
// still carries the snapshot, for what any caller may read.
type Identity struct {
	st *state
	cl *client
	// subject is the verified JWT's sub when the client matched on jwt.
	subject string
}

// Subject is the subject of the verified JWT the caller was identified by
// ("" when it matched on anything else), for records of who asked.
func (id Identity) Subject() string { return id.subject }

// Matched reports whether the caller matched a client.
func (id Identity) Matched() bool { return id.cl != nil }

// Client is the name of the matched client ("" when none matched).
func (id Identity) Client() string {
	if id.cl == nil {
		return ""
	}
	return id.cl.name
}

// DefaultRole is the matched client's default role ("" when none matched).
func (id Identity) DefaultRole() string {
	if id.cl == nil {
		return ""
	}
	return id.cl.defaultRole()
}

// Account is the account of the matched client's default role ("" when
// none matched): the account an instance of this caller would live in.
func (id Identity) Account() string {
	if id.cl == nil {
		return ""
	}
	if r := id.st.roles[id.cl.defaultRole()]; r != nil {
		return AccountOf(r.cfg.ARN)
	}
	return ""
}

// Config is the config snapshot the caller was identified against.
func (id Identity) Config() *config.Config {
	if id.st == nil {
		return nil
	}
	return id.st.cfg
}

// Resolve identifies the caller: the one trust decision of a request.
// Errors are *Error; the Identity carries the config snapshot either way.
func (a *Agent) Resolve(c *Caller) (Identity, error) {
	st := a.state.Load()
	cl, err := st.identify(c)
	if err != nil {
		return Identity{st: st}, err
	}
	id := Identity{st: st, cl: cl}
	if cl.jwt != nil && c.JWT != nil {
		// Matched on a verified JWT: identify already verified it (the
		// front end memoizes the answer), so this costs nothing.
		if j, err := c.JWT(); err == nil && j != nil {
			id.subject = j.Subject
		}
	}
	return id, nil
}

// Credentials returns credentials of roleName ("" = the caller's default
// role) for the caller, after the trust decision. Errors are *Error.
func (a *Agent) Credentials(ctx context.Context, c *Caller, roleName string) (*Credentials, error) {
	id, err := a.Resolve(c)
	if err != nil {
		return nil, err
	}
	return a.CredentialsFor(ctx, id, c, roleName)
}

// CredentialsFor is Credentials for a caller already identified by Resolve.
func (a *Agent) CredentialsFor(ctx context.Context, id Identity, c *Caller, roleName string) (*Credentials, error) {
	st, cl := id.st, id.cl
	if cl == nil {
		return nil, errNoClient
	}
	if roleName == "" {
		roleName = cl.defaultRole()
	}
	r := st.roles[roleName]
	if r == nil || !cl.allows(roleName) {
		// Same answer for "does not exist" and "not yours": no caller
		// learns which roles exist.
		// The name comes from the URL: bounded, as every log line and
		// audit field is, should this message ever be logged.
		return nil, errorf(KindRoleNotAllowed, nil, "no such role for this caller: %q", cut.String(roleName, maxLoggedRole))
	}
	return a.get(ctx, st, cl, r, c)
}

func (a *Agent) get(ctx context.Context, st *state, cl *client, r *role, c *Caller) (*Credentials, error) {
	id := st.session(cl, r, c)
	if v, ok := a.entries.Load(id.key); ok {
		e := v.(*entry)
		if creds, at := e.load(); creds != nil {
			now := a.clk.Now()
			e.touch(a, now)
			if now.Before(at) && now.Before(creds.Expiration) {
				a.metrics.CacheHit()
				return creds, nil
			}
			// A retired session (nobody used it, so it was not renewed)
			// is renewed in the foreground once inside the SDKs' stale
			// window; a live one only within waitWindow of expiry.
			wait := waitWindow
			if e.retired.Load() {
				wait = stsrules.StaleWindow // a retired session is renewed before SDKs call it stale
			}
			if left := creds.Expiration.Sub(now); left > wait {
				a.metrics.CacheHit()
				a.refreshSoon(e)
				return creds, nil
			}
			// Close to expiry: wait for the renewal, but keep serving what
			// we have if it fails and is still valid. A recent failure is
			// not retried on every request (the negative cache).
			err, failed := a.negativeHit(id.key)
			if !failed {
				var fresh *Credentials
				if fresh, err = a.fetch(ctx, e); err == nil {
					return fresh, nil
				}
			}
			if a.clk.Now().Before(creds.Expiration) {
				a.metrics.CacheHit()
				return creds, nil
			}
			return nil, a.callerError(r, err)
		}
	}
	a.metrics.CacheMiss()
	if n, ok := a.negativeHit(id.key); ok {
		return nil, a.callerError(r, n)
	}
	creds, err := a.fetch(ctx, a.newEntry(st, cl, r, id, c))
	if err != nil {
		return nil, a.callerError(r, err)
	}
	return creds, nil
}

func (a *Agent) callerError(r *role, err error) error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var se *SourceError
	if errors.As(err, &se) && !se.Retryable {
		return errorf(KindSourceRejected, err, "STS refused role %q: %s", r.cfg.Name, cut.String(se.Error(), maxLoggedError))
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return errorf(KindUnavailable, err, "STS did not answer in time for role %q and no valid credentials are cached", r.cfg.Name)
	}
	return errorf(KindUnavailable, err, "STS failed for role %q and no valid credentials are cached: %s", r.cfg.Name, cut.String(err.Error(), maxLoggedError))
}

func (a *Agent) negativeHit(key string) (error, bool) {
	a.negMu.Lock()
	defer a.negMu.Unlock()
	n, ok := a.neg.Get(key)
	if !ok {
		return nil, false
	}
	if !a.clk.Now().Before(n.until) {
		a.neg.Remove(key)
		return nil, false
	}
	return n.err, true
}

func (a *Agent) remember(key string, err error) {
	ttl := a.state.Load().cfg.Cache.ErrorTTL.D()
	if ttl <= 0 {
		return
	}
	a.negMu.Lock()
	a.neg.Add(key, negative{err: err, until: a.clk.Now().Add(ttl)})
	a.negMu.Unlock()
}

// fetch makes (or joins) the one logical source call for e. The call runs on
// a context detached from every caller, with its own deadline, so an
// impatient caller cannot cancel the others' fetch.
func (a *Agent) fetch(ctx context.Context, e *entry) (*Credentials, error) {
	for attempt := 0; ; attempt++ {
		ch := a.flight.DoChan(e.key, func() (any, error) {
			// A miss that reaches the flight after an earlier flight for
			// the same session finished finds its result here.
			if v, ok := a.entries.Load(e.key); ok {
				if creds, at := v.(*entry).load(); creds != nil && a.clk.Now().Before(at) {
					return creds, nil
				}
			}
			return a.retrieve(e, sched.Caller)
		})
		select {
		case res := <-ch:
			if res.Err != nil {
				return nil, res.Err
			}
			creds := res.Val.(*Credentials)
			// A flight joined late may have finished long ago (a background
			// renewal): never hand out what expired meanwhile.
			if a.clk.Now().Before(creds.Expiration) || attempt > 0 {
				if !a.clk.Now().Before(creds.Expiration) {
					return nil, &SourceError{Code: "ExpiredCredentials", Message: "source returned credentials that have already expired", Retryable: true}
				}
				return creds, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// retrieve calls the source once and installs the result, after taking a
// token of the STS budget in lane's turn (lanePaid: the caller took it).
// Callers (misses, callers waiting near expiry) may use the whole budget;
// renewals and warm-up fetches leave headroom for them.
func (a *Agent) retrieve(e *entry, lane sched.Lane) (*Credentials, error) {
	if !a.track() {
		return nil, &SourceError{Code: "ShuttingDown", Message: "the sidecar is shutting down", Retryable: true}
	}
	defer a.wg.Done()
	ctx, cancel := withClockTimeout(a.ctx, a.clk, a.timeout)
	defer cancel()
	req := e.role.req
	req.SessionName = e.session
	if e.tags != nil {
		req.Tags = e.tags
	}
	if e.via != nil {
		via, err := e.via(ctx)
		if err != nil {
			return nil, err
		}
		req.Via = via
	}
	if lane == sched.Caller {
		a.noteAsked(e.client, a.clk.Now())
	}
	if lane != lanePaid {
		if err := a.waitBudget(ctx, e.client, lane); err != nil {
			return nil, &SourceError{Code: "Throttled", Message: "local STS request budget (sts.max_qps) exhausted", Retryable: true, Err: err}
		}
	}
	op := req.Operation()
	creds, err := a.src.Retrieve(ctx, req)
	if err == nil && (creds == nil || creds.AccessKeyID == "" || creds.SecretAccessKey == "" || creds.SessionToken == "" || creds.Expiration.IsZero()) {
		err = &SourceError{Code: "MalformedResponse", Message: "source returned incomplete credentials", Retryable: true}
	}
	if err == nil && !a.clk.Now().Before(creds.Expiration) {
		err = &SourceError{Code: "ExpiredCredentials", Message: "source returned credentials that have already expired", Retryable: true}
	}
	if err != nil {
		a.metrics.STSRequest(op, resultOf(err))
		a.noteOutcome(err)
		a.remember(e.key, err)
		a.log.Warn("credential request failed",
			zap.String("client", e.client), zap.String("role", e.role.cfg.Name),
			zap.String("session", e.session), zap.String("error", cut.String(err.Error(), maxLoggedError)))
		return nil, err
	}
	a.metrics.STSRequest(op, "success")
	a.noteOutcome(nil)
	a.install(e, creds)
	return creds, nil
}

func resultOf(err error) string {
	var se *SourceError
	switch {
	case errors.As(err, &se) && se.Retryable:
		return "retryable_error"
	case errors.As(err, &se):
		return "error"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "retryable_error"
	}
}

// sleep waits d on the agent's clock, or until ctx ends.
func (a *Agent) sleep(ctx context.Context, d time.Duration) error {
	ch := make(chan struct{})
	t := a.clk.AfterFunc(d, func() { close(ch) })
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		t.Stop()
		return ctx.Err()
	}
}
