package jwtauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// maxBearerFile bounds the sidecar's own token file.
const maxBearerFile = 64 << 10

// provider is one compiled identity_providers entry with its keys.
type provider struct {
	name, issuer string
	fp           string // settings fingerprint: unchanged settings keep the provider
	policy       Policy
	node         string // required kubernetes.io node name ("" = any)
	file, url    string // where the keys come from (one of them)
	http         *http.Client
	bearerFile   string
	jwksBearer   bool // the bearer token goes with JWKS fetches (config's BearerToJWKS)
	review       *reviewer

	keys atomic.Pointer[KeySet] // nil until the first successful load

	mu       sync.Mutex
	fetched  time.Time // last successful fetch
	tried    time.Time // last attempt
	err      error     // last fetch error
	inflight bool      // a background refresh is running
	// reviewRetryAt: a TokenReview found the API server away; stale
	// reviews are not asked again before then.
	reviewRetryAt time.Time
}

// Intervals of the bounded retries.
const (
	// reviewRetry is how long after a TokenReview found the API server
	// unavailable that already verified tokens are kept without asking.
	reviewRetry = 5 * time.Second
	// noKeysRetry is the least time between fetches a token triggers
	// while a provider has no key set at all.
	noKeysRetry = 5 * time.Second
)

// claimTry records an attempt to fetch at now, unless one was made less
// than every ago (false: do not fetch). Check and record are one step, so
// concurrent callers make one fetch.
func (p *provider) claimTry(now time.Time, every time.Duration) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tried.IsZero() && now.Sub(p.tried) < every {
		return false
	}
	p.tried = now
	return true
}

func (p *provider) reviewDown(now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return now.Before(p.reviewRetryAt)
}

func (p *provider) setReviewDown(until time.Time) {
	p.mu.Lock()
	p.reviewRetryAt = until
	p.mu.Unlock()
}

func (p *provider) fetchedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetched
}

func (p *provider) lastErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// refresh fetches p's JWKS now; a failure keeps the last good set.
func (a *Authenticator) refresh(ctx context.Context, p *provider) {
	p.mu.Lock()
	p.tried = a.clk.Now()
	p.mu.Unlock()
	ks, err := p.fetchJWKS(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.err = err
		a.log.Warn("jwks fetch failed; keeping the last good key set", zap.String("provider", p.name), zap.String("url", p.url), zap.Error(err))
		return
	}
	p.err = nil
	p.fetched = a.clk.Now()
	p.keys.Store(ks)
	// Leases on tokens whose key left the set must end now.
	a.gen.Add(1)
}

// refreshAsync refreshes p's keys in the background, one refresh at a time.
func (a *Authenticator) refreshAsync(p *provider) {
	p.mu.Lock()
	if p.inflight || a.ctx.Err() != nil {
		p.mu.Unlock()
		return
	}
	p.inflight = true
	p.mu.Unlock()
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.refresh(a.ctx, p)
		p.mu.Lock()
		p.inflight = false
		p.mu.Unlock()
	}()
}

// fetchJWKS GETs p.url: no redirects, a timeout, a bounded body, the
// provider's CA when configured, and its bearer token when the URL is the
// API server's (config's BearerToJWKS).
func (p *provider) fetchJWKS(ctx context.Context) (*KeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks request: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	if p.jwksBearer {
		if err := p.authorize(req); err != nil {
			return nil, err
		}
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("get jwks: status %d", resp.StatusCode)
	}
	body, err := readBody(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("get jwks: %w", err)
	}
	return ParseJWKS(body)
}

func readBody(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxJWKSSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxJWKSSize {
		return nil, fmt.Errorf("body is larger than %d bytes", MaxJWKSSize)
	}
	return b, nil
}

// authorize adds the sidecar's own bearer token, re-read on every use (the
// kubelet rotates it).
func (p *provider) authorize(req *http.Request) error {
	if p.bearerFile == "" {
		return nil
	}
	f, err := os.Open(p.bearerFile)
	if err != nil {
		return fmt.Errorf("read bearer_token_file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBearerFile+1))
	if err != nil {
		return fmt.Errorf("read bearer_token_file: %w", err)
	}
	if len(b) > maxBearerFile {
		return fmt.Errorf("bearer_token_file %s is larger than %d bytes", p.bearerFile, maxBearerFile)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return fmt.Errorf("bearer_token_file %s is empty", p.bearerFile)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	return nil
}

// reviewer asks the API server's TokenReview whether a token is still valid.
type reviewer struct {
	p         *provider
	url       string
	audiences []string
}

type tokenReview struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Spec       struct {
		Token     string   `json:"token"`
		Audiences []string `json:"audiences,omitempty"`
	} `json:"spec"`
	Status struct {
		Authenticated bool `json:"authenticated"`
		User          struct {
			Username string `json:"username"`
		} `json:"user"`
		Audiences []string `json:"audiences"`
		Error     string   `json:"error"`
	} `json:"status"`
}

// check returns nil when the API server vouches for token as subject, a
// ReasonReview error when it refuses it, and ReasonUnavailable when it
// cannot be asked.
func (r *reviewer) check(ctx context.Context, token, subject string) error {
	var in tokenReview
	in.APIVersion, in.Kind = "authentication.k8s.io/v1", "TokenReview"
	in.Spec.Token, in.Spec.Audiences = token, r.audiences
	body, _ := json.Marshal(in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return fail(ReasonUnavailable, err, "token review request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := r.p.authorize(req); err != nil {
		return fail(ReasonUnavailable, err, "token review: %v", err)
	}
	resp, err := r.p.http.Do(req)
	if err != nil {
		return fail(ReasonUnavailable, err, "token review: %v", errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return fail(ReasonUnavailable, nil, "token review: status %d", resp.StatusCode)
	}
	b, err := readBody(resp.Body)
	if err != nil {
		return fail(ReasonUnavailable, err, "token review: %v", err)
	}
	var out tokenReview
	if err := json.Unmarshal(b, &out); err != nil {
		return fail(ReasonUnavailable, err, "token review: answer is not JSON")
	}
	st := out.Status
	if !st.Authenticated {
		return fail(ReasonReview, nil, "the API server does not accept the token (%s)", clip(st.Error))
	}
	if st.User.Username != subject {
		return fail(ReasonReview, nil, "the API server names the token's user %q, not %q", clip(st.User.Username), clip(subject))
	}
	ok := len(st.Audiences) == 0
	for _, a := range st.Audiences {
		if contains(r.audiences, a) {
			ok = true
		}
	}
	if !ok {
		return fail(ReasonReview, nil, "the API server accepts the token for other audiences")
	}
	return nil
}
