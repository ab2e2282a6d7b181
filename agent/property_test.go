package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// runSchedule drives an agent through a schedule decoded from ops: requests
// by several callers, clock jumps, source failures and recoveries, bursts of
// concurrent requests. It checks the cache's invariants after every step:
//   - never an expired credential;
//   - never more than one in-flight source call per session;
//   - no failed request unless STS is failing (or failed within
//     cache.error_ttl, the negative cache) and the session has no valid
//     credentials left.
func runSchedule(t *testing.T, ops []byte) {
	f := newFixture(t, 1000)
	type sess struct {
		c    *Caller
		role string
	}
	sessions := []sess{
		{alice, "app"}, {alice, "short"}, {alice, "chained"},
		{tokenCaller("bob-token"), "app"}, {addrCaller("127.0.0.1"), "short"},
	}
	last := make([]*Credentials, len(sessions))
	failing := false
	var lastFailure time.Time
	check := func(i int, c *Credentials, err error) {
		now := f.clk.Now()
		if err != nil {
			stsBad := failing || (!lastFailure.IsZero() && now.Sub(lastFailure) <= 5*time.Second)
			valid := last[i] != nil && now.Before(last[i].Expiration)
			if !stsBad || valid {
				t.Fatalf("at +%s session %d failed (sts failing=%v, cached valid=%v): %v", now.Sub(t0), i, failing, valid, err)
			}
			return
		}
		if !now.Before(c.Expiration) {
			t.Fatalf("at +%s session %d got credentials expired at +%s", now.Sub(t0), i, c.Expiration.Sub(t0))
		}
		last[i] = c
	}
	for p := 0; p+1 < len(ops); p += 2 {
		op, arg := ops[p]%8, int(ops[p+1])
		switch op {
		case 0, 1, 2:
			i := arg % len(sessions)
			c, err := f.a.Credentials(context.Background(), sessions[i].c, sessions[i].role)
			check(i, c, err)
		case 3:
			f.clk.AdvanceSettling(time.Duration(arg)*10*time.Second, synctest.Wait)
		case 4:
			f.clk.AdvanceSettling(time.Duration(arg%64)*3*time.Minute, synctest.Wait)
		case 5:
			failing = !failing
			if failing {
				f.src.setFail(throttled)
			} else {
				f.src.setFail(nil)
			}
		case 6:
			i := arg % len(sessions)
			var wg sync.WaitGroup
			res := make([]*Credentials, 8)
			errs := make([]error, 8)
			for k := range res {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res[k], errs[k] = f.a.Credentials(context.Background(), sessions[i].c, sessions[i].role)
				}()
			}
			wg.Wait()
			for k := range res {
				check(i, res[k], errs[k])
			}
		case 7:
			f.clk.AdvanceSettling(time.Duration(arg)*time.Second, synctest.Wait)
		}
		// Background renewals take no fake time: let them finish (the
		// bubble is idle) before the clock moves again.
		synctest.Wait()
		if failing {
			lastFailure = f.clk.Now()
		}
		f.src.mu.Lock()
		maxIn := f.src.maxIn
		f.src.mu.Unlock()
		if maxIn > 1 {
			t.Fatalf("step %d: %d concurrent source calls for one session", p/2, maxIn)
		}
	}
}

func TestCacheProperties(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 42))
			ops := make([]byte, 600)
			for i := range ops {
				ops[i] = byte(r.IntN(256))
			}
			synctest.Test(t, func(t *testing.T) { runSchedule(t, ops) })
		})
	}
}

func FuzzCacheSchedule(f *testing.F) {
	f.Add([]byte{0, 0, 3, 200, 4, 10, 0, 0, 5, 0, 4, 20, 0, 0, 5, 0, 0, 0})
	f.Add([]byte{6, 1, 5, 0, 4, 63, 0, 1, 6, 1, 5, 0, 7, 255, 0, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 2000 {
			ops = ops[:2000]
		}
		synctest.Test(t, func(t *testing.T) { runSchedule(t, ops) })
	})
}
