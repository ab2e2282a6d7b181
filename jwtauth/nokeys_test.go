package jwtauth

import (
	"context"
	"fmt"
	"testing"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// TestNoKeysFetchBounded: while a jwks_url provider has no key set
// (its endpoint failing), tokens signed with the caller's own key must not
// each trigger a JWKS fetch: at most one per noKeysRetry.
func TestNoKeysFetchBounded(t *testing.T) {
	clk := clock.NewFake(testNow)
	srv := newJWKSServer(t, rsaKey(t, "r1"))
	srv.set(nil, true) // the issuer's endpoint is failing
	a := newAuth(t, clk, cfgYAML("    jwks_url: "+srv.URL+"\n"))
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		c := claims()
		c["jti"] = fmt.Sprint(i)
		_, err := a.Verify(ctx, sign(t, rsaKeyB(t, "attacker"), c, nil), src("net:127.0.0.0/8"))
		if ReasonOf(err) != ReasonUnavailable {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	if n := srv.hits.Load(); n > 1 {
		t.Fatalf("%d JWKS fetches within one second from one source's attacker-signed tokens, want at most 1", n)
	}
}
