package agent

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
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

// TestRenewalsNotStarvedByABacklog: while one client keeps misses queued
// on a saturated STS budget, another client's sessions are still renewed
// in time: its caller never holds credentials inside the SDKs' stale
// window (renewals take their client's turn among the queued misses).
func TestRenewalsNotStarvedByABacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFixture(t, 1).clk
		src := newFakeSource(clk)
		a, err := New(Options{Source: src, Clock: asyncClock{clk}, DisableWarm: true, FetchTimeout: time.Hour, Rand: func() float64 { return 0.5 }},
			parseConfig(t, fmt.Sprintf(fairYAML, 100000, 1)))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		const hogs, perHog = 20, 200 // 4000 misses: more than 50 min of the budget grants
		for g := range hogs {
			go func() {
				defer func() { done <- struct{}{} }()
				// A fresh address per request: every one is a miss that
				// queues for the budget.
				for i := 0; i < perHog && ctx.Err() == nil; i++ {
					a.Credentials(ctx, loopbackCaller(g*perHog+i), "wide")
				}
			}()
		}
		victim := tokenCaller("victim-token")
		least := time.Duration(1 << 62)
		type answer struct {
			c   *Credentials
			err error
		}
		// 50 min: a 1 h session not renewed by then has under 15 min left.
		for sec := 0; sec < 50*60; sec += 30 {
			// The request runs beside the clock: a miss waits for the
			// budget, which only the clock refills.
			got := make(chan answer, 1)
			go func() {
				c, err := a.Credentials(context.Background(), victim, "v1")
				got <- answer{c, err}
			}()
			synctest.Wait() // everyone has queued what they will
			// Timer by timer (budget dispatches, refresh points), each
			// one's work done before the clock moves on.
			clk.AdvanceSettling(30*time.Second, synctest.Wait)
			synctest.Wait()
			select {
			case r := <-got:
				if r.err != nil {
					t.Fatalf("victim at +%ds: %v", sec, r.err)
				}
				least = min(least, r.c.Expiration.Sub(clk.Now()))
			default:
				t.Fatalf("victim at +%ds: no answer within 30 s of budget time", sec)
			}
		}
		cancel() // queued misses give up on their context
		for range hogs {
			<-done
		}
		t.Logf("over 50 min of a saturated budget (a 1 h session, renewed at about 35 min), the victim never held less than %s", least)
		if least < 15*time.Minute {
			t.Fatalf("the victim was handed credentials with %s left", least)
		}
	})
}

// asyncClock runs the fake clock's timer callbacks in goroutines of their
// own, as the real clock does: the renewal a timer starts must not run on
// (and block) the goroutine that moves the clock.
type asyncClock struct{ *clock.Fake }

func (c asyncClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	return c.Fake.AfterFunc(d, func() { go f() })
}

// TestClockDeadline: a source call's deadline runs on the agent's clock
// and reports DeadlineExceeded; a parent that has already ended ends it at
// once; cancel reports Canceled.
func TestClockDeadline(t *testing.T) {
	clk := clock.NewFake(t0)
	ctx, cancel := withClockTimeout(context.Background(), clk, time.Minute)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || !d.Equal(t0.Add(time.Minute)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	clk.Advance(59 * time.Second)
	if ctx.Err() != nil {
		t.Fatal("ended early")
	}
	clk.Advance(time.Second)
	<-ctx.Done()
	if ctx.Err() != context.DeadlineExceeded {
		t.Fatalf("err %v", ctx.Err())
	}
	parent, stop := context.WithCancel(context.Background())
	stop()
	ctx2, cancel2 := withClockTimeout(parent, clk, time.Hour)
	defer cancel2()
	<-ctx2.Done()
	if ctx2.Err() != context.Canceled {
		t.Fatalf("ended parent: %v", ctx2.Err())
	}
	ctx3, cancel3 := withClockTimeout(context.Background(), clk, time.Hour)
	cancel3()
	if ctx3.Err() != context.Canceled {
		t.Fatalf("cancel: %v", ctx3.Err())
	}
}
