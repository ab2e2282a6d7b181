package agent

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// A caller's fetch that succeeds while a failed renewal's retry is still
// armed replaces that retry with the new session's refresh point: the
// entry must not stay marked pending (the retry that would have cleared
// it never runs), or it is never renewed in the background again and its
// callers are handed credentials down to the last minutes.
func TestForegroundFetchReplacingRetryKeepsRenewals(t *testing.T) {
	clk := clock.NewFake(t0)
	src := newFakeSource(clk)
	// Jitter near 1: a retry after expiry (10 s ceiling) comes after the
	// negative cache (5 s) lets a caller fetch again.
	a, err := New(Options{
		Source: src, Clock: clk, Logger: zaptest.NewLogger(t),
		DisableWarm: true, Rand: func() float64 { return 0.99 },
	}, parseConfig(t, fmt.Sprintf(testYAML, 100)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	first := mustCreds(t, a, alice, "app")
	src.setFail(throttled)
	for clk.Now().Before(first.Expiration) {
		clk.Advance(time.Minute)
		a.Credentials(context.Background(), alice, "app") // in use: renewed, and retried
	}
	// Past expiry the retries no longer hold callers back (nothing valid
	// is cached): the negative cache does, for error_ttl (5 s).
	for range 20 {
		clk.Advance(time.Second)
		a.Credentials(context.Background(), alice, "app")
	}
	src.setFail(nil)
	var cur *Credentials
	for range 30 {
		if c, err := a.Credentials(context.Background(), alice, "app"); err == nil && c != first {
			cur = c
			break
		}
		clk.Advance(time.Second)
	}
	if cur == nil {
		t.Fatal("not recovered 30 s after the outage")
	}

	// The next lifetime, asked every minute: renewed in the background,
	// so never handed under 15 minutes (PRODUCT.md, Caching and refresh).
	for end := cur.Expiration.Add(30 * time.Minute); clk.Now().Before(end); clk.Advance(time.Minute) {
		c := mustCreds(t, a, alice, "app")
		if left := c.Expiration.Sub(clk.Now()); left < 15*time.Minute {
			t.Fatalf("at %s handed credentials with %s left: the background renewal was lost", clk.Now().Sub(t0), left)
		}
	}
}
