package agent

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

// fairYAML: an attacker-driven client whose session name includes the
// source address and whose CIDR is all of loopback, and a victim.
const fairYAML = `
cache: {max_entries: %d}
sts: {mode: local, max_qps: %d}
roles:
  - {name: wide, duration: 1h, session_name: "w-{{.Addr}}"}
  - {name: v1, duration: 1h}
  - {name: v2, duration: 1h}
  - {name: v3, duration: 1h}
clients:
  - {name: victim, match: {token: victim-token}, roles: [v1, v2, v3]}
  - {name: wide, match: {source_cidrs: ["127.0.0.0/8"]}, roles: [wide]}
`

func loopbackCaller(i int) *Caller {
	return &Caller{Addr: netip.AddrFrom4([4]byte{127, 0, byte(i / 250), byte(1 + i%250)})}
}

// TestBudgetIsSharedByClient reproduces the STS-budget starvation attack:
// 200 misses of one client from 200 addresses are queued when the victim
// asks. Tokens go round-robin by client, so the victim is served at the
// next token, not after the attacker's backlog (100 s at 2/s, far beyond
// the fetch deadline: it used to get 503).
func TestBudgetIsSharedByClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFixture(t, 1).clk
		src := newFakeSource(clk)
		a, err := New(Options{Source: src, Clock: clk, DisableWarm: true, FetchTimeout: time.Hour}, parseConfig(t, fmt.Sprintf(fairYAML, 1000, 2)))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		const attackers = 200
		attack := make(chan error, attackers)
		for i := range attackers {
			go func() {
				_, err := a.Credentials(context.Background(), loopbackCaller(i), "wide")
				attack <- err
			}()
		}
		synctest.Wait() // the burst is spent, the rest queued
		victim := make(chan error, 1)
		go func() {
			_, err := a.Credentials(context.Background(), tokenCaller("victim-token"), "v1")
			victim <- err
		}()
		synctest.Wait()
		start := clk.Now()
		for step := 0; ; step++ {
			select {
			case err := <-victim:
				waited := clk.Now().Sub(start)
				served := int(src.calls.Load()) - 1
				t.Logf("victim served after %s of STS budget time, with %d of %d attacker misses served", waited, served, attackers)
				if err != nil {
					t.Fatalf("victim: %v", err)
				}
				if waited > 2*time.Second {
					t.Fatalf("victim waited %s behind another client's backlog", waited)
				}
				// Let the attack finish so the bubble can end.
				for len(attack) < attackers {
					clk.AdvanceSettling(time.Second, synctest.Wait)
				}
				return
			default:
			}
			if step > 300 {
				t.Fatal("victim never served")
			}
			clk.AdvanceSettling(100*time.Millisecond, synctest.Wait)
		}
	})
}

// TestCacheIsSharedByClient reproduces the cache-eviction attack: with a
// full cache, one client's new sessions evict its own oldest ones, never
// another client's valid sessions.
func TestCacheIsSharedByClient(t *testing.T) {
	clk := newFixture(t, 1).clk
	src := newFakeSource(clk)
	a, err := New(Options{Source: src, Clock: clk, DisableWarm: true}, parseConfig(t, fmt.Sprintf(fairYAML, 20, 1000000)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for _, r := range []string{"v1", "v2", "v3"} {
		mustCreds(t, a, tokenCaller("victim-token"), r)
	}
	for i := range 500 {
		if _, err := a.Credentials(context.Background(), loopbackCaller(i), "wide"); err != nil {
			t.Fatalf("attacker %d: %v", i, err)
		}
	}
	before := src.calls.Load()
	for _, r := range []string{"v1", "v2", "v3"} {
		mustCreds(t, a, tokenCaller("victim-token"), r)
	}
	evicted := src.calls.Load() - before
	t.Logf("after 500 sessions of another client in a cache of 20: %d of the victim's 3 sessions evicted; cache holds %d", evicted, a.Len())
	if evicted != 0 {
		t.Fatalf("%d of the victim's valid sessions were evicted for another client", evicted)
	}
	if a.Len() > 20 {
		t.Fatalf("cache holds %d sessions, bound 20", a.Len())
	}
}
