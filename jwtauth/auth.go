package jwtauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
)

// Defaults of Options.
const (
	DefaultRefreshInterval = 5 * time.Minute
	// DefaultUnknownKIDInterval bounds refreshes triggered by an unknown kid.
	DefaultUnknownKIDInterval = time.Minute
	DefaultFetchTimeout       = 5 * time.Second
	// DefaultReviewTTL is how long one TokenReview answer is trusted.
	DefaultReviewTTL = 30 * time.Second
	DefaultCacheSize = 10000
	// DefaultSourceRate is the verifications per second (and burst) one
	// source may trigger for tokens not in the cache.
	DefaultSourceRate = 20
	// DefaultGlobalRate bounds them for all sources together: an RSA-2048
	// check costs ~40 µs, so the default spends at most ~2% of a core.
	DefaultGlobalRate = 500
	// maxSources bounds the per-source budgets kept.
	maxSources = 4096
)

// Options are an Authenticator's dependencies and bounds.
type Options struct {
	Clock  clock.Clock
	Logger *zap.Logger
	// RefreshInterval is how often a jwks_url is re-read.
	RefreshInterval time.Duration
	// UnknownKIDInterval is the least time between refreshes that an
	// unknown kid triggers, per provider.
	UnknownKIDInterval time.Duration
	// FetchTimeout bounds one JWKS or TokenReview request.
	FetchTimeout time.Duration
	// ReviewTTL bounds how long one TokenReview answer is used.
	ReviewTTL time.Duration
	// CacheSize bounds the verified tokens kept.
	CacheSize int
	// SourceRate and GlobalRate bound the verifications per second of
	// uncached tokens, per source and in all.
	SourceRate, GlobalRate float64
	// Transport, when set, is the base transport of JWKS and TokenReview
	// requests (its TLS config gets the provider's CA).
	Transport *http.Transport
}

// Identity is a verified caller token. It is immutable and shared by
// every request presenting the same token while it is cached.
type Identity struct {
	// Provider is the identity_providers entry that verified it.
	Provider string
	Claims
}

// Authenticator verifies caller tokens against the configured providers.
type Authenticator struct {
	opts   Options
	clk    clock.Clock
	log    *zap.Logger
	provs  atomic.Pointer[map[string]*provider] // by issuer
	cache  *lru.Cache[[32]byte, *cached]
	flight singleflight.Group
	global *rate.Limiter
	srcMu  sync.Mutex
	srcs   *lru.Cache[string, *rate.Limiter]
	// gen counts the changes that can make a Lease stale before its time
	// (providers applied, keys replaced, tokens forgotten): a lease holds
	// the generation it was taken in.
	gen atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// cached is one verified token.
type cached struct {
	id   *Identity
	prov *provider
	// until: exp, and no later than the review's validity.
	reviewed atomic.Int64 // unix nanoseconds of the last positive review
}

// New returns an Authenticator with no providers; Apply installs them.
func New(opts Options) *Authenticator {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.RefreshInterval <= 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.UnknownKIDInterval <= 0 {
		opts.UnknownKIDInterval = DefaultUnknownKIDInterval
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = DefaultFetchTimeout
	}
	if opts.ReviewTTL <= 0 || opts.ReviewTTL > DefaultReviewTTL {
		opts.ReviewTTL = DefaultReviewTTL
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.SourceRate <= 0 {
		opts.SourceRate = DefaultSourceRate
	}
	if opts.GlobalRate <= 0 {
		opts.GlobalRate = DefaultGlobalRate
	}
	a := &Authenticator{opts: opts, clk: opts.Clock, log: opts.Logger}
	a.cache, _ = lru.New[[32]byte, *cached](opts.CacheSize)
	a.srcs, _ = lru.New[string, *rate.Limiter](maxSources)
	a.global = rate.NewLimiter(rate.Limit(opts.GlobalRate), int(opts.GlobalRate/5)+1)
	a.ctx, a.cancel = context.WithCancel(context.Background())
	empty := map[string]*provider{}
	a.provs.Store(&empty)
	return a
}

// Close stops background refreshes and waits for them.
func (a *Authenticator) Close() {
	a.cancel()
	a.wg.Wait()
}

// Apply installs the identity providers of cfg: Prepare, then its commit.
func (a *Authenticator) Apply(cfg *config.Config) error {
	commit, err := a.Prepare(cfg)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// Prepare builds the identity providers of cfg and returns the function
// that puts them in force; until it is called nothing changes, so a
// reload that another component refuses leaves the running providers as
// they were. A provider whose settings are unchanged keeps its keys (and
// its cached tokens); a changed or new one starts afresh. jwks_file keys
// are read from cfg's snapshot, so a changed file arrives as a reload. An
// error names a provider whose keys could not be loaded (a file or CA
// that does not parse). Prepare and commit are not for concurrent use
// with another Prepare (the daemon applies one reload at a time).
func (a *Authenticator) Prepare(cfg *config.Config) (commit func(), err error) {
	old := *a.provs.Load()
	byName := map[string]*provider{}
	for _, p := range old {
		byName[p.name] = p
	}
	next := make(map[string]*provider, len(cfg.IdentityProviders))
	var errs []error
	// New key files of unchanged providers are swapped in only once every
	// provider built: a config rejected further down changes nothing.
	type swap struct {
		to   *provider
		keys *KeySet
	}
	var swaps []swap
	for i := range cfg.IdentityProviders {
		pc := &cfg.IdentityProviders[i]
		fp := providerFingerprint(cfg, pc)
		if p := byName[pc.Name]; p != nil && p.fp == fp && p.file == "" {
			next[pc.Issuer] = p
			continue
		}
		p, err := a.newProvider(cfg, pc, fp)
		if err != nil {
			errs = append(errs, err)
		}
		if p != nil {
			if op := byName[pc.Name]; op != nil && op.fp == fp && op.file != "" {
				// Same settings, new file contents: cached tokens stay
				// valid while their key is still in the set.
				swaps = append(swaps, swap{op, p.keys.Load()})
				p = op
			}
			next[pc.Issuer] = p
		}
	}
	if len(errs) > 0 {
		// A bad config never replaces a good one.
		return nil, errors.Join(errs...)
	}
	return func() {
		for _, sw := range swaps {
			sw.to.keys.Store(sw.keys)
		}
		a.provs.Store(&next)
		a.gen.Add(1)
	}, nil
}

// Verify returns the identity of a caller's bearer token. source names
// where the request came from (an address prefix, a uid), asked only for
// an uncached token: it keys the budget that bounds how many uncached
// tokens one source can have checked per second. A cached token costs a
// digest and a map lookup.
func (a *Authenticator) Verify(ctx context.Context, token string, source func() string) (*Identity, error) {
	l, err := a.VerifyLease(ctx, token, source)
	return l.ID, err
}

// Lease is a verified token's identity with the bounds of its reuse: a
// front end that sees the same token again (an SDK resends it on every
// request of a keep-alive connection) may take ID without a digest or a
// cache lookup while Valid holds. A lease ends at the token's exp, at the
// end of its TokenReview answer's validity, when a jwks_url is due for a
// refresh, and whenever providers, keys or forgotten tokens change.
type Lease struct {
	// ID is the verified identity (shared with the cache).
	ID    *Identity
	gen   uint64
	until int64 // unix nanoseconds: the lease is over from then on
}

// VerifyLease is Verify returning a Lease on the identity.
func (a *Authenticator) VerifyLease(ctx context.Context, token string, source func() string) (Lease, error) {
	d := Digest(token)
	e, err := a.verify(ctx, d, token, source)
	if err != nil {
		return Lease{}, err
	}
	return a.leaseOf(d, e), nil
}

// Valid reports whether l may still stand for its token: taken in the
// current generation, and before its end.
func (a *Authenticator) Valid(l *Lease) bool {
	return l.ID != nil && l.gen == a.gen.Load() && a.clk.Now().UnixNano() < l.until
}

// leaseOf is the lease on cached token e (digest d): until the earliest of
// its exp, its review's end and its provider's next key refresh (reached
// through Verify, so hit kicks that refresh as it would without leases).
// The generation is read first and e checked after it, so a change that
// raced with the verification either shows in the check or ends the lease
// through the generation; an entry already gone gets a lease that is over.
func (a *Authenticator) leaseOf(d [32]byte, e *cached) Lease {
	l := Lease{ID: e.id, gen: a.gen.Load()}
	if c, ok := a.cache.Peek(d); !ok || c != e || (*a.provs.Load())[e.id.Issuer] != e.prov || !e.prov.keys.Load().Has(e.id.KeyThumbprint) {
		return l
	}
	l.until = e.id.Expiry.UnixNano()
	if e.prov.review != nil {
		l.until = min(l.until, e.reviewed.Load()+int64(a.opts.ReviewTTL))
	}
	if e.prov.url != "" {
		l.until = min(l.until, e.prov.fetchedAt().Add(a.opts.RefreshInterval).UnixNano())
	}
	return l
}

func (a *Authenticator) verify(ctx context.Context, d [32]byte, token string, source func() string) (*cached, error) {
	now := a.clk.Now()
	provs := *a.provs.Load()
	if e, ok := a.cache.Get(d); ok {
		ok, err := a.hit(ctx, e, provs, token, now)
		if ok {
			return e, nil
		}
		a.cache.Remove(d)
		if err != nil {
			return nil, err
		}
	}
	if len(token) > MaxTokenSize {
		return nil, fail(ReasonMalformed, nil, "token is %d bytes, more than %d", len(token), MaxTokenSize)
	}
	if !a.allow(source()) {
		return nil, fail(ReasonBusy, nil, "too many new tokens from this source; retry later")
	}
	v, err, _ := a.flight.Do(string(d[:]), func() (any, error) {
		// Detached from the first caller: its cancellation must not
		// decide for the others sharing the flight.
		return a.verifyNew(context.WithoutCancel(ctx), d, token, provs)
	})
	if err != nil {
		return nil, err
	}
	return v.(*cached), nil
}

// hit checks a cached token: still unexpired, its provider unchanged, its
// key still published, its TokenReview fresh. ok false (with no error)
// means the entry is stale and the token must be verified again.
func (a *Authenticator) hit(ctx context.Context, e *cached, provs map[string]*provider, token string, now time.Time) (bool, error) {
	if !now.Before(e.id.Expiry) || provs[e.id.Issuer] != e.prov || !e.prov.keys.Load().Has(e.id.KeyThumbprint) {
		return false, nil
	}
	if e.prov.review == nil || now.Sub(time.Unix(0, e.reviewed.Load())) < a.opts.ReviewTTL {
		a.prov(e.prov, now)
		return true, nil
	}
	if e.prov.reviewDown(now) {
		// The API server was away moments ago: keep the already verified
		// identity without asking again per request (which would turn
		// each request into an API call exactly while it is throttling).
		return true, nil
	}
	// The review is stale: ask again (one request per token at a time),
	// detached from the caller who asks first: a caller cancelling its
	// own request must not turn the review into "unavailable" — kept —
	// for the requests sharing it.
	_, err, _ := a.flight.Do("review\x00"+token, func() (any, error) {
		err := e.prov.review.check(context.WithoutCancel(ctx), token, e.id.Subject)
		switch {
		case err == nil:
			e.reviewed.Store(a.clk.Now().UnixNano())
		case ReasonOf(err) == ReasonUnavailable:
			// Already verified, and the API server is away: keep the
			// identity (a recoverable failure), log it, and ask again
			// only after reviewRetry.
			e.prov.setReviewDown(a.clk.Now().Add(reviewRetry))
			a.log.Warn("token review unavailable; keeping an already verified token", zap.String("provider", e.id.Provider), zap.Error(err))
			return nil, nil
		}
		return nil, err
	})
	if err != nil {
		return false, err
	}
	return true, nil
}

// prov kicks a background refresh of p's keys when they are due.
func (a *Authenticator) prov(p *provider, now time.Time) {
	if p.url != "" && now.Sub(p.fetchedAt()) >= a.opts.RefreshInterval {
		a.refreshAsync(p)
	}
}

func (a *Authenticator) verifyNew(ctx context.Context, d [32]byte, token string, provs map[string]*provider) (*cached, error) {
	parsed, err := Parse(token, CallerAlgorithms)
	if err != nil {
		return nil, err
	}
	p := provs[parsed.Issuer]
	if p == nil {
		return nil, fail(ReasonIssuer, nil, "no identity provider has issuer %q", clip(parsed.Issuer))
	}
	now := a.clk.Now()
	keys := p.keys.Load()
	if p.url != "" && (keys == nil || (parsed.KeyID != "" && !keys.HasKeyID(parsed.KeyID))) {
		// First use, or a kid we do not know (a rotation): fetch now, at
		// most once per UnknownKIDInterval — per noKeysRetry while there
		// are no keys at all (the endpoint failing since start): anyone
		// can sign a token naming the issuer, and each fetch carries our
		// bearer token to the endpoint. Detached from the caller, so one
		// that cancels at once cannot use the interval's fetch up.
		every := a.opts.UnknownKIDInterval
		if keys == nil {
			every = min(every, noKeysRetry)
		}
		if p.claimTry(now, every) {
			a.refresh(context.WithoutCancel(ctx), p)
			keys = p.keys.Load()
		}
	}
	if keys == nil {
		return nil, fail(ReasonUnavailable, p.lastErr(), "the keys of %s are not available", p.issuer)
	}
	claims, err := parsed.Verify(keys, p.policy, now)
	if err != nil {
		return nil, err
	}
	if p.node != "" && nodeName(claims.All) != p.node {
		return nil, fail(ReasonNode, nil, "token is bound to node %q, not this node", clip(nodeName(claims.All)))
	}
	e := &cached{id: &Identity{Provider: p.name, Claims: *claims}, prov: p}
	if p.review != nil {
		if err := p.review.check(ctx, token, claims.Subject); err != nil {
			return nil, err
		}
		e.reviewed.Store(a.clk.Now().UnixNano())
	}
	a.cache.Add(d, e)
	a.prov(p, now)
	return e, nil
}

// nodeName is the kubernetes.io.node.name claim of a Kubernetes token.
func nodeName(all map[string]any) string {
	k, _ := all["kubernetes.io"].(map[string]any)
	n, _ := k["node"].(map[string]any)
	s, _ := n["name"].(string)
	return s
}

// allow takes one verification from source's budget and the global one.
func (a *Authenticator) allow(source string) bool {
	a.srcMu.Lock()
	l, ok := a.srcs.Get(source)
	if !ok {
		l = rate.NewLimiter(rate.Limit(a.opts.SourceRate), int(a.opts.SourceRate)+1)
		a.srcs.Add(source, l)
	}
	a.srcMu.Unlock()
	now := a.clk.Now()
	if !l.AllowN(now, 1) {
		return false
	}
	return a.global.AllowN(now, 1)
}

// Forget drops a cached token (tests and reloads that revoke), and ends
// every lease so that no front end keeps using it.
func (a *Authenticator) Forget(token string) {
	a.cache.Remove(Digest(token))
	a.gen.Add(1)
}

func providerFingerprint(cfg *config.Config, pc *config.IdentityProvider) string {
	h := fmt.Sprintf("%s\x00%s\x00%q\x00%s\x00%s\x00%d", pc.Name, pc.Issuer, pc.Audiences, pc.JWKSFile, pc.JWKSURL, pc.MaxTokenLifetime)
	if k := pc.Kubernetes; k != nil {
		node := ""
		if k.NodeName != nil {
			node = k.NodeName.Value
		}
		ca, _ := cfg.ReadFile(k.CAFile)
		h += fmt.Sprintf("\x00%s\x00%s\x00%s\x00%t\x00%s\x00%x", k.APIURL, k.CAFile, k.BearerTokenFile, k.TokenReview, node, ca)
	}
	return h
}

func (a *Authenticator) newProvider(cfg *config.Config, pc *config.IdentityProvider, fp string) (*provider, error) {
	p := &provider{
		name: pc.Name, issuer: pc.Issuer, fp: fp,
		policy: Policy{Issuer: pc.Issuer, Audiences: pc.Audiences, MaxLifetime: pc.MaxTokenLifetime.D(), Algorithms: CallerAlgorithms},
	}
	p.file, p.url = pc.JWKSSource()
	k := pc.Kubernetes
	if k != nil && k.NodeName != nil {
		p.node = k.NodeName.Value
	}
	if p.url != "" || (k != nil && k.TokenReview) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if a.opts.Transport != nil {
			tr = a.opts.Transport.Clone()
		}
		tr.Proxy = nil
		if k != nil && k.CAFile != "" {
			pem, err := cfg.ReadFile(k.CAFile)
			if err != nil {
				return p, fmt.Errorf("identity provider %q: read ca_file: %w", pc.Name, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return p, fmt.Errorf("identity provider %q: ca_file %s holds no PEM certificate", pc.Name, k.CAFile)
			}
			tc := tr.TLSClientConfig
			if tc == nil {
				tc = &tls.Config{}
			}
			tc = tc.Clone()
			tc.RootCAs = pool
			tc.MinVersion = tls.VersionTLS12
			tr.TLSClientConfig = tc
		}
		p.http = &http.Client{
			Transport: tr,
			Timeout:   a.opts.FetchTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return errors.New("redirects are not followed")
			},
		}
		if k != nil {
			p.bearerFile = k.BearerTokenFile
			p.jwksBearer = pc.BearerToJWKS()
		}
		if k != nil && k.TokenReview {
			p.review = &reviewer{p: p, url: trimSlash(k.APIURL) + "/apis/authentication.k8s.io/v1/tokenreviews", audiences: pc.Audiences}
		}
	}
	if p.file != "" {
		data, err := cfg.ReadFile(p.file)
		if err != nil {
			return p, fmt.Errorf("identity provider %q: read jwks_file: %w", pc.Name, err)
		}
		ks, err := ParseJWKS(data)
		if err != nil {
			return p, fmt.Errorf("identity provider %q: jwks_file %s: %w", pc.Name, p.file, err)
		}
		p.keys.Store(ks)
	}
	return p, nil
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// Keys returns the current key set of the provider with issuer iss (nil
// when it has none yet): what explain and tests inspect.
func (a *Authenticator) Keys(iss string) *KeySet {
	if p := (*a.provs.Load())[iss]; p != nil {
		return p.keys.Load()
	}
	return nil
}

// TokenID is a short, non-reversible name for a token in logs.
func TokenID(token string) string {
	d := Digest(token)
	return hex.EncodeToString(d[:6])
}
