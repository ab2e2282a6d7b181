package jwtauth

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/configtest"
)

// lease verifies tok and fails the test unless it gets a valid lease.
func lease(t *testing.T, a *Authenticator, tok string) Lease {
	t.Helper()
	l, err := a.VerifyLease(context.Background(), tok, src("src"))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Valid(&l) {
		t.Fatalf("a fresh lease is not valid: %+v", l)
	}
	return l
}

func TestLeaseSameToken(t *testing.T) {
	clk := clock.NewFake(testNow)
	k := rsaKey(t, "r1")
	a := newAuth(t, clk, cfgYAML("    jwks_file: "+writeJWKS(t, k)+"\n"))
	tok := sign(t, k, claims(), nil)
	l := lease(t, a, tok)
	again := lease(t, a, tok)
	if l.ID != again.ID {
		t.Fatalf("second lease holds %p, want the cached %p", again.ID, l.ID)
	}
	// Until exp the lease stands: no digest or lookup is needed.
	clk.Advance(9 * time.Minute)
	if !a.Valid(&l) {
		t.Fatal("lease ended before exp")
	}
	if a.Valid(&Lease{}) {
		t.Fatal("the zero lease is valid")
	}
}

func TestLeaseEndsAtExp(t *testing.T) {
	clk := clock.NewFake(testNow)
	k := rsaKey(t, "r1")
	a := newAuth(t, clk, cfgYAML("    jwks_file: "+writeJWKS(t, k)+"\n"))
	tok := sign(t, k, claims(), nil)
	l := lease(t, a, tok)
	clk.Set(testNow.Add(10 * time.Minute)) // exp
	if a.Valid(&l) {
		t.Fatal("lease valid at exp")
	}
	// (Within the leeway past exp the token verifies again, but only for
	// the request at hand: a lease on it is already over.)
	if l, err := a.VerifyLease(context.Background(), tok, src("src")); err != nil || a.Valid(&l) {
		t.Fatalf("within the leeway: %v, valid %t", err, a.Valid(&l))
	}
	clk.Advance(DefaultLeeway + time.Second)
	if _, err := a.VerifyLease(context.Background(), tok, src("src")); ReasonOf(err) != ReasonExpired {
		t.Fatalf("after exp: %v", err)
	}
}

func TestLeaseEndsWithReview(t *testing.T) {
	clk := clock.NewFake(testNow)
	k := rsaKey(t, "r1")
	srv := newReviewServer(t, k)
	a := newAuth(t, clk, cfgYAML("    kubernetes: {api_url: "+srv.URL+", token_review: true}\n"))
	tok := sign(t, k, claims(), nil)
	srv.accept(tok, true)
	l := lease(t, a, tok)
	clk.Advance(DefaultReviewTTL - time.Second)
	if !a.Valid(&l) {
		t.Fatal("lease ended within the review TTL")
	}
	clk.Advance(time.Second)
	if a.Valid(&l) {
		t.Fatal("lease valid past the review TTL")
	}
	// A new lease asks the API server again...
	l = lease(t, a, tok)
	if n := srv.reviews.Load(); n != 2 {
		t.Fatalf("%d reviews, want 2", n)
	}
	// ...and once the pod is deleted, the next one is refused.
	srv.accept(tok, false)
	clk.Advance(DefaultReviewTTL)
	if a.Valid(&l) {
		t.Fatal("lease valid past the review TTL")
	}
	if _, err := a.VerifyLease(context.Background(), tok, src("src")); ReasonOf(err) != ReasonReview {
		t.Fatalf("deleted pod's token: %v", err)
	}
}

func TestLeaseEndsWhenKeyLeavesFile(t *testing.T) {
	clk := clock.NewFake(testNow)
	k1, k2 := rsaKey(t, "r1"), ecKey(t, "e1")
	path := writeJWKS(t, k1, k2)
	yml := cfgYAML("    jwks_file: " + path + "\n")
	a := newAuth(t, clk, yml)
	t1, t2 := sign(t, k1, claims(), nil), sign(t, k2, claims(), nil)
	l1, l2 := lease(t, a, t1), lease(t, a, t2)
	if err := os.WriteFile(path, jwks(t, k2), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(configtest.Parse(t, yml)); err != nil {
		t.Fatal(err)
	}
	if a.Valid(&l1) || a.Valid(&l2) {
		t.Fatal("leases valid after the key set changed")
	}
	if _, err := a.VerifyLease(context.Background(), t1, src("src")); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("token of the removed key: %v", err)
	}
	lease(t, a, t2) // the kept key's token gets a new lease
}

func TestLeaseEndsWhenKeyLeavesURL(t *testing.T) {
	clk := clock.NewFake(testNow)
	k1, k2 := rsaKey(t, "r1"), ecKey(t, "e1")
	srv := newJWKSServer(t, k1, k2)
	a := newAuth(t, clk, cfgYAML("    jwks_url: "+srv.URL+"\n"))
	tok := sign(t, k1, claims(), nil)
	l := lease(t, a, tok)
	srv.set(jwks(t, k2), false)
	a.refresh(context.Background(), (*a.provs.Load())[testIssuer])
	if a.Valid(&l) {
		t.Fatal("lease valid after its key left the JWKS")
	}
	if _, err := a.VerifyLease(context.Background(), tok, src("src")); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("token of the removed key: %v", err)
	}
}

func TestLeaseEndsWhenURLRefreshIsDue(t *testing.T) {
	// A lease must not hide the periodic jwks_url refresh that lookups kick.
	clk := clock.NewFake(testNow)
	k := rsaKey(t, "r1")
	srv := newJWKSServer(t, k)
	a := newAuth(t, clk, cfgYAML("    jwks_url: "+srv.URL+"\n"), func(o *Options) { o.RefreshInterval = time.Minute })
	tok := sign(t, k, claims(), nil)
	l := lease(t, a, tok)
	clk.Advance(time.Minute)
	if a.Valid(&l) {
		t.Fatal("lease valid when the keys are due for a refresh")
	}
	if _, err := a.VerifyLease(context.Background(), tok, src("src")); err != nil {
		t.Fatal(err)
	}
	a.wg.Wait() // the background refresh the lookup kicked
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	lease(t, a, tok)
}

func TestLeaseEndsOnForget(t *testing.T) {
	clk := clock.NewFake(testNow)
	k := rsaKey(t, "r1")
	a := newAuth(t, clk, cfgYAML("    jwks_file: "+writeJWKS(t, k)+"\n"))
	tok := sign(t, k, claims(), nil)
	l := lease(t, a, tok)
	a.Forget(tok)
	if a.Valid(&l) {
		t.Fatal("lease valid after Forget")
	}
}
