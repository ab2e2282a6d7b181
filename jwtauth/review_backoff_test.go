package jwtauth

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// TestStaleReviewNotRetriedPerRequest: once a cached token's review
// is stale and the API server answers 429/5xx, each request presenting the
// token must not cost another TokenReview (no budget applies on this path).
func TestStaleReviewNotRetriedPerRequest(t *testing.T) {
	clk := clock.NewFake(testNow)
	k := rsaKey(t, "r1")
	doc := jwks(t, k)
	var reviews atomic.Int64
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/openid/v1/jwks" {
			w.Write(doc)
			return
		}
		reviews.Add(1)
		if down.Load() {
			http.Error(w, "throttled", http.StatusTooManyRequests)
			return
		}
		var tr tokenReview
		json.NewDecoder(r.Body).Decode(&tr)
		tr.Status.Authenticated = true
		tr.Status.User.Username = "system:serviceaccount:prod:billing"
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(tr)
	}))
	t.Cleanup(srv.Close)
	a := newAuth(t, clk, cfgYAML("    kubernetes: {api_url: "+srv.URL+", token_review: true}\n"))
	ctx := context.Background()
	tok := sign(t, k, claims(), nil)
	if _, err := a.Verify(ctx, tok, src("net:127.0.0.0/8")); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	clk.Advance(31 * time.Second)
	before := reviews.Load()
	for i := 0; i < 100; i++ {
		a.Verify(ctx, tok, src("net:127.0.0.0/8"))
	}
	if n := reviews.Load() - before; n > 2 {
		t.Fatalf("%d TokenReview requests for 100 requests of one cached token in the same instant, want at most 2", n)
	}
}
