package sched

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// TestRefreshAtInvariants: PRODUCT.md's window for every lifetime STS
// allows and every jitter: no earlier than half the lifetime, no later
// than two thirds of it or RefreshMargin before expiry.
func TestRefreshAtInvariants(t *testing.T) {
	for life := 15 * time.Minute; life <= 12*time.Hour; life += 5 * time.Minute {
		for _, j := range []float64{0, 0.25, 0.5, 0.999999} {
			exp := t0.Add(life)
			at := RefreshAt(t0, exp, j)
			if at.Before(t0.Add(life / 2)) {
				t.Fatalf("life %s jitter %g: refresh at %s, before half-life", life, j, at.Sub(t0))
			}
			latest := min(life*2/3, life-RefreshMargin)
			if at.Sub(t0) > max(latest, life/2) {
				t.Fatalf("life %s jitter %g: refresh at %s, after %s", life, j, at.Sub(t0), max(latest, life/2))
			}
			if life >= 30*time.Minute && exp.Sub(at) < 15*time.Minute {
				t.Fatalf("life %s jitter %g: renewed with %s left, inside the SDKs' stale window", life, j, exp.Sub(at))
			}
		}
	}
}

// TestBackoff: exponential from BackoffBase, capped by BackoffCap and by a
// quarter of the time left (not under BackoffFloor), full jitter.
func TestBackoff(t *testing.T) {
	const almost1 = 0.999999
	for _, tc := range []struct {
		failures int
		left     time.Duration
		max      time.Duration
	}{
		{1, time.Hour, time.Second},
		{2, time.Hour, 2 * time.Second},
		{5, time.Hour, 16 * time.Second},
		{12, time.Hour, BackoffCap},
		{1000, time.Hour, BackoffCap},
		{1000, 8 * time.Minute, 2 * time.Minute},
		{1000, 20 * time.Second, BackoffFloor},
		{1000, -time.Minute, BackoffFloor},
		{0, time.Hour, time.Second},
	} {
		if got := Backoff(tc.failures, tc.left, almost1); got > tc.max || got < tc.max*99/100 {
			t.Errorf("Backoff(%d, %s) ceiling %s, want %s", tc.failures, tc.left, got, tc.max)
		}
		if got := Backoff(tc.failures, tc.left, 0); got != 0 {
			t.Errorf("Backoff(%d, %s, 0) = %s: full jitter starts at 0", tc.failures, tc.left, got)
		}
	}
}

// TestGrant: callers first, then renewals, then the warm-up, each
// background lane leaving Reserve for callers.
func TestGrant(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		tokens                float64
		burst                 int
		callers, renewals     bool
		caller, renewal, warm bool
	}{
		{"full bucket", 10, 10, false, false, true, true, true},
		{"half the burst left", 5.5, 10, false, false, true, false, false},
		{"callers queued", 10, 10, true, false, false, false, false},
		{"renewals waiting", 10, 10, false, true, true, true, false},
		{"burst 1", 1, 1, false, false, true, true, true},
		{"burst 1, renewals waiting", 1, 1, false, true, true, true, false},
		{"no token", 0.5, 10, false, false, false, false, false},
	} {
		b := Budget{Tokens: tc.tokens, Burst: tc.burst, CallersQueued: tc.callers, RenewalsWaiting: tc.renewals}
		if got := Grant(Caller, b); got != tc.caller {
			t.Errorf("%s: Grant(Caller) = %v", tc.name, got)
		}
		if got := Grant(Renewal, b); got != tc.renewal {
			t.Errorf("%s: Grant(Renewal) = %v", tc.name, got)
		}
		if got := Grant(Warm, b); got != tc.warm {
			t.Errorf("%s: Grant(Warm) = %v", tc.name, got)
		}
	}
}

// TestProbeDue: healthy, every renewal calls; failing, only once the last
// probe's backoff is over.
func TestProbeDue(t *testing.T) {
	if !ProbeDue(0, t0, t0.Add(time.Hour)) {
		t.Error("a healthy source is not gated")
	}
	if ProbeDue(3, t0, t0.Add(time.Second)) {
		t.Error("a failing source was probed before the last probe's backoff ended")
	}
	if !ProbeDue(3, t0.Add(time.Second), t0.Add(time.Second)) {
		t.Error("a failing source was not probed once the backoff ended")
	}
}
