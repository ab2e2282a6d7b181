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

// TestRevokedTokenNotAcceptedViaCanceledPeer: a cached token whose
// pod is gone must be refused once its review is stale, even when the
// request that started the re-review is canceled by its own caller (the
// attacker's second connection) while another request shares it.
func TestRevokedTokenNotAcceptedViaCanceledPeer(t *testing.T) {
	clk := clock.NewFake(testNow)
	k := rsaKey(t, "r1")
	doc := jwks(t, k)
	var revoked atomic.Bool
	arrived := make(chan struct{}, 1) // a review of the revoked token reached the API server
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/openid/v1/jwks" {
			w.Write(doc)
			return
		}
		var tr tokenReview
		json.NewDecoder(r.Body).Decode(&tr)
		if revoked.Load() {
			select {
			case arrived <- struct{}{}:
			default:
			}
			time.Sleep(300 * time.Millisecond) // the API server's round trip
			tr.Status.Error = "pod not found"
		} else {
			tr.Status.Authenticated = true
			tr.Status.User.Username = "system:serviceaccount:prod:billing"
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(tr)
	}))
	t.Cleanup(srv.Close)
	a := newAuth(t, clk, cfgYAML("    kubernetes: {api_url: "+srv.URL+", token_review: true}\n"))
	tok := sign(t, k, claims(), nil)
	if _, err := a.Verify(context.Background(), tok, src("s")); err != nil {
		t.Fatal(err)
	}
	revoked.Store(true) // the pod is deleted
	clk.Advance(31 * time.Second)

	ctxA, cancelA := context.WithCancel(context.Background())
	go a.Verify(ctxA, tok, src("s")) // request A starts the re-review...
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("request A's re-review never reached the API server")
	}
	errB := make(chan error, 1)
	go func() { _, err := a.Verify(context.Background(), tok, src("s")); errB <- err }() // ...B joins it
	// B's join cannot be observed; it has 250 ms of A's round trip left.
	time.Sleep(50 * time.Millisecond)
	cancelA() // A's connection closes
	if err := <-errB; ReasonOf(err) != ReasonReview {
		t.Fatalf("revoked token accepted: err = %v, want a review refusal", err)
	}
}
