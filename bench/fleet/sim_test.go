package main

import (
	"fmt"
	"math"
	"testing"
	"time"
)

func small() Params {
	p := DefaultParams(10)
	p.Sessions, p.Day, p.At = 5, 3*time.Hour, time.Hour
	return p
}

// TestSmallFleet pins the figures of a small fleet for a fixed seed: the
// model is deterministic, so a change to a scheduling function (or to the
// model) shows here as a changed figure to explain.
func TestSmallFleet(t *testing.T) {
	want := map[Scenario]string{
		Steady:  "calls 255 peak 2 p99 1 expired 0 stale 0 first-calls 0 p99 0s",
		Outage:  "calls 382 peak 2 p99 1 expired 0 stale 0 first-calls 0 p99 0s",
		Rollout: "calls 287 peak 5 p99 1 expired 0 stale 0 first-calls 0 p99 0s",
		Restart: "calls 285 peak 50 p99 1 expired 0 stale 0 first-calls 50 p99 100ms",
	}
	for _, sc := range []Scenario{Steady, Outage, Rollout, Restart} {
		r, err := Run(small(), sc)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("calls %d peak %d p99 %.0f expired %d stale %d first-calls %d p99 %s", r.Calls, r.Peak, r.P99, r.Expired, r.Stale, len(r.FirstCall), r.FirstCallQuantile(0.99))
		if got != want[sc] {
			t.Errorf("%s:\n got %s\nwant %s", sc, got, want[sc])
		}
	}
}

// TestInvariants: whatever the scenario, no session is handed out with
// under 15 minutes left while STS is healthy, a 20-minute outage expires
// nothing, and steady state costs what the refresh window says: each
// session renewed once per 30 to 40 minutes of a 1-hour life.
func TestInvariants(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		for _, sc := range []Scenario{Steady, Outage, Rollout, Restart} {
			p := DefaultParams(50)
			p.Day, p.At, p.Seed = 4*time.Hour, 2*time.Hour, seed
			r, err := Run(p, sc)
			if err != nil {
				t.Fatal(err)
			}
			if r.Stale != 0 || r.MinLeftHealthy < staleWindow {
				t.Errorf("seed %d %s: %d renewals inside the stale window; least time left %s", seed, sc, r.Stale, r.MinLeftHealthy)
			}
			if r.Expired != 0 {
				t.Errorf("seed %d %s: %d sessions expired", seed, sc, r.Expired)
			}
			if sc == Restart && len(r.FirstCall) != p.Nodes*p.Sessions {
				t.Errorf("seed %d: %d of %d first calls answered", seed, len(r.FirstCall), p.Nodes*p.Sessions)
			}
			if sc == Steady {
				// The mean of a uniform jitter over [30 min, 40 min].
				want := float64(p.Nodes*p.Sessions) / (35 * 60)
				if math.Abs(r.Mean-want) > 0.05*want {
					t.Errorf("seed %d: steady mean %.2f calls/s, want %.2f ± 5%%", seed, r.Mean, want)
				}
			}
		}
	}
}

// TestBadParams: a clear error, not a panic.
func TestBadParams(t *testing.T) {
	p := small()
	p.Nodes = 0
	if _, err := Run(p, Steady); err == nil {
		t.Error("0 nodes accepted")
	}
	p = small()
	p.At = p.Day
	if _, err := Run(p, Outage); err == nil {
		t.Error("an event after the day accepted")
	}
}
