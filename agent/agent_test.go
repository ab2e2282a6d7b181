package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/time/rate"

	"github.com/credsidecar/credsidecar/agent/sched"
	"github.com/credsidecar/credsidecar/config"
)

func mustCreds(t *testing.T, a *Agent, c *Caller, role string) *Credentials {
	t.Helper()
	creds, err := a.Credentials(context.Background(), c, role)
	if err != nil {
		t.Fatalf("Credentials(%q): %v", role, err)
	}
	return creds
}

func kindOf(err error) Kind {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Kind
	}
	return 0
}

func TestTrustDecision(t *testing.T) {
	f := newFixture(t, 100)
	cases := []struct {
		name   string
		caller *Caller
		role   string
		want   Kind
	}{
		{"token client, allowed role", alice, "app", 0},
		{"token client, default role", alice, "", 0},
		{"token client, role of another client", alice, "peruid", KindRoleNotAllowed},
		{"token client, unknown role", alice, "nope", KindRoleNotAllowed},
		{"unknown token never falls back to address", &Caller{Token: "x", HasToken: true, Addr: addrCaller("127.0.0.1").Addr}, "short", KindBadToken},
		{"empty token is still a token", &Caller{HasToken: true, Addr: addrCaller("127.0.0.1").Addr}, "short", KindBadToken},
		{"address client", addrCaller("127.0.0.9"), "short", 0},
		{"address client, not its role", addrCaller("127.0.0.9"), "app", KindRoleNotAllowed},
		{"no client", addrCaller("169.254.1.1"), "app", KindNoClient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.a.Credentials(context.Background(), tc.caller, tc.role)
			if got := kindOf(err); got != tc.want {
				t.Fatalf("kind = %d (%v), want %d", got, err, tc.want)
			}
		})
	}
	// Not-allowed and unknown roles read the same: no caller learns which exist.
	_, e1 := f.a.Credentials(context.Background(), alice, "peruid")
	_, e2 := f.a.Credentials(context.Background(), alice, "peruid2")
	if strings.ReplaceAll(e1.Error(), "peruid", "X") != strings.ReplaceAll(e2.Error(), "peruid2", "X") {
		t.Fatalf("messages differ: %q vs %q", e1, e2)
	}
}

func TestSessionKeys(t *testing.T) {
	f := newFixture(t, 100)
	a1 := mustCreds(t, f.a, alice, "app")
	a2 := mustCreds(t, f.a, tokenCaller("alice-token"), "app")
	b1 := mustCreds(t, f.a, tokenCaller("bob-token"), "app")
	if a1 != a2 {
		t.Error("two requests of one client for one role should share a session")
	}
	if a1 == b1 {
		t.Error("clients with different session names must not share a session")
	}
	// Session names depending on the uid give each uid its own session.
	uid := func(u uint32) *Caller {
		c := tokenCaller("bob-token")
		c.UID = func() (uint32, error) { return u, nil }
		return c
	}
	u1 := mustCreds(t, f.a, uid(1000), "peruid")
	u2 := mustCreds(t, f.a, uid(1001), "peruid")
	u1b := mustCreds(t, f.a, uid(1000), "peruid")
	if u1 == u2 || u1 != u1b {
		t.Error("per-uid session names must give per-uid sessions")
	}
	names := map[string]bool{}
	for _, r := range f.src.reqs {
		names[r.SessionName] = true
	}
	for _, want := range []string{"alice", "bob", "u-1000", "u-1001"} {
		if !names[want] {
			t.Errorf("no source call with session name %q (got %v)", want, names)
		}
	}
}

func TestSessionKeyCoversDefinition(t *testing.T) {
	base := `
sts: {mode: local, max_qps: 1000000}
roles:
  - {name: app%s}
clients:
  - {name: c, match: {token: t}, roles: [app]}
`
	variants := map[string]string{
		"external id":     ", external_id: ext-1",
		"source identity": ", source_identity: me",
		"session policy":  `, session_policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'`,
		"policy arns":     ", policy_arns: [arn:aws:iam::000000000000:policy/p]",
		"tags":            ", tags: {a: b}",
		"duration":        ", duration: 2h",
	}
	fp := func(extra string) string {
		cfg := parseConfig(t, fmt.Sprintf(base, extra))
		st := compile(cfg)
		return st.session(st.clients[0], st.roles["app"], tokenCaller("t")).key
	}
	plain := fp("")
	for name, v := range variants {
		if k := fp(v); k == plain {
			t.Errorf("%s does not change the session key", name)
		}
	}
}

func TestSingleFlight100(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 100)
		release := make(chan struct{})
		f.src.block = release
		const n = 100
		var wg sync.WaitGroup
		got := make([]*Credentials, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], errs[i] = f.a.Credentials(context.Background(), alice, "app")
			}()
		}
		// Every goroutine has joined the flight once the bubble is idle.
		waitFor(t, func() bool { return f.src.calls.Load() >= 1 })
		close(release)
		wg.Wait()
		if c := f.src.calls.Load(); c != 1 {
			t.Fatalf("source calls = %d, want 1", c)
		}
		for i := range n {
			if errs[i] != nil || got[i] != got[0] {
				t.Fatalf("caller %d: %v / different credentials", i, errs[i])
			}
		}
	})
}

func TestSingleFlightFailureSharedAndNoStorm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 100)
		release := make(chan struct{})
		f.src.block = release
		f.src.setFail(denied)
		var wg sync.WaitGroup
		errs := make([]error, 20)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = f.a.Credentials(context.Background(), alice, "app")
			}()
		}
		waitFor(t, func() bool { return f.src.calls.Load() >= 1 })
		close(release)
		wg.Wait()
		for _, err := range errs {
			if kindOf(err) != KindSourceRejected || err.Error() != errs[0].Error() {
				t.Fatalf("got %v, want the same rejection for all", err)
			}
		}
		if !strings.Contains(errs[0].Error(), "AccessDenied") || !strings.Contains(errs[0].Error(), `"app"`) {
			t.Fatalf("error should name the role and STS's error: %v", errs[0])
		}
		// The negative cache answers the next requests without a source call.
		f.src.block = nil
		for range 10 {
			f.a.Credentials(context.Background(), alice, "app")
		}
		if c := f.src.calls.Load(); c != 1 {
			t.Fatalf("source calls = %d, want 1 (negative cache)", c)
		}
		f.clk.Advance(6 * time.Second)
		f.src.setFail(nil)
		mustCreds(t, f.a, alice, "app")
	})
}

func TestImpatientCallerDoesNotCancelOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 100)
		release := make(chan struct{})
		f.src.block = release
		ctx, cancel := context.WithCancel(context.Background())
		first := make(chan error, 1)
		go func() {
			_, err := f.a.Credentials(ctx, alice, "app")
			first <- err
		}()
		waitFor(t, func() bool { return f.src.calls.Load() >= 1 })
		second := make(chan error, 1)
		go func() {
			_, err := f.a.Credentials(context.Background(), alice, "app")
			second <- err
		}()
		cancel()
		if err := <-first; !errors.Is(err, context.Canceled) && kindOf(err) != KindUnavailable {
			t.Fatalf("impatient caller: %v", err)
		}
		close(release)
		if err := <-second; err != nil {
			t.Fatalf("patient caller got %v: the first caller's cancel reached the shared fetch", err)
		}
		if c := f.src.calls.Load(); c != 1 {
			t.Fatalf("source calls = %d, want 1", c)
		}
	})
}

func TestRefreshPolicy(t *testing.T) {
	cases := []struct {
		life          time.Duration
		lo, hi        time.Duration // allowed refresh offsets from issue
		minLeftAtWire time.Duration
	}{
		{time.Hour, 30 * time.Minute, 40 * time.Minute, 20 * time.Minute},
		{30 * time.Minute, 15 * time.Minute, 15 * time.Minute, 15 * time.Minute},
		{12 * time.Hour, 6 * time.Hour, 8 * time.Hour, 4 * time.Hour},
		{2 * time.Minute, time.Minute, time.Minute, time.Minute},
	}
	for _, tc := range cases {
		for _, j := range []float64{0, 0.5, 0.999} {
			at := sched.RefreshAt(t0, t0.Add(tc.life), j).Sub(t0)
			if at < tc.lo || at > tc.hi {
				t.Errorf("life %s jitter %.3f: refresh at %s, want within [%s, %s]", tc.life, j, at, tc.lo, tc.hi)
			}
			if left := tc.life - at; left < tc.minLeftAtWire {
				t.Errorf("life %s: %s left at refresh, want >= %s", tc.life, left, tc.minLeftAtWire)
			}
		}
	}
}

// TestNeverStaleWhileHealthy walks a caller through 10 hours, a minute at a
// time: it never gets credentials with under 15 minutes left.
func TestNeverStaleWhileHealthy(t *testing.T) {
	for _, role := range []string{"app", "short", "chained"} {
		t.Run(role, func(t *testing.T) {
			f := newFixture(t, 100)
			var calls []time.Time
			first := mustCreds(t, f.a, alice, role)
			life := first.Expiration.Sub(first.Issued)
			for range 600 {
				f.clk.Advance(time.Minute)
				c := mustCreds(t, f.a, alice, role)
				now := f.clk.Now()
				if left := c.Expiration.Sub(now); left < 15*time.Minute {
					t.Fatalf("at %s: handed credentials with %s left", now.Sub(t0), left)
				}
				if len(calls) == 0 || !c.Issued.Equal(calls[len(calls)-1]) {
					calls = append(calls, c.Issued)
				}
			}
			// Renewals happen no earlier than half the lifetime: no loops.
			for i := 1; i < len(calls); i++ {
				if gap := calls[i].Sub(calls[i-1]); gap < life/2 {
					t.Fatalf("renewals %s apart, under half of %s", gap, life)
				}
			}
			hops := int64(1)
			if role == "chained" {
				hops = 2 // each renewal of the chain's first hop is a call too
			}
			if got, max := f.src.calls.Load(), hops*(int64(10*time.Hour/(life/2))+1); got > max {
				t.Fatalf("%d source calls in 10h, want at most %d", got, max)
			}
		})
	}
}

// A 20-minute STS outage starting at the refresh point of a 1-hour session
// is invisible to callers.
func TestShortOutageInvisible(t *testing.T) {
	f := newFixture(t, 100)
	first := mustCreds(t, f.a, alice, "app")
	f.clk.Advance(29 * time.Minute)
	mustCreds(t, f.a, alice, "app")
	f.src.setFail(throttled)
	for range 20 {
		f.clk.Advance(time.Minute)
		c := mustCreds(t, f.a, alice, "app")
		if c != first {
			t.Fatal("credentials changed during the outage")
		}
	}
	f.src.setFail(nil)
	// Backoff is capped, so the renewal succeeds within the cap.
	f.clk.Advance(backoffCap)
	if c := mustCreds(t, f.a, alice, "app"); c == first {
		t.Fatal("not renewed after the outage")
	}
}

// An outage past expiry yields KindUnavailable (503), never expired
// credentials, and recovers by itself.
func TestOutagePastExpiry(t *testing.T) {
	f := newFixture(t, 100)
	first := mustCreds(t, f.a, alice, "app")
	f.src.setFail(throttled)
	for f.clk.Now().Before(first.Expiration.Add(-time.Second)) {
		f.clk.Advance(time.Minute)
		if f.clk.Now().Before(first.Expiration) {
			mustCreds(t, f.a, alice, "app")
		}
	}
	f.clk.Set(first.Expiration)
	_, err := f.a.Credentials(context.Background(), alice, "app")
	if kindOf(err) != KindUnavailable {
		t.Fatalf("at expiry: %v, want KindUnavailable", err)
	}
	if !strings.Contains(err.Error(), `"app"`) || !strings.Contains(err.Error(), "Throttling") {
		t.Fatalf("message should name the role and the STS error: %v", err)
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "token") {
		t.Fatalf("message leaks: %v", err)
	}
	f.src.setFail(nil)
	f.clk.Advance(6 * time.Second) // past the negative cache
	c := mustCreds(t, f.a, alice, "app")
	if !c.Expiration.After(f.clk.Now()) {
		t.Fatal("expired credentials after recovery")
	}
}

func TestEvictionAtBound(t *testing.T) {
	f := newFixture(t, 2)
	mustCreds(t, f.a, alice, "app")
	mustCreds(t, f.a, alice, "short")
	timers := f.clk.Pending()
	mustCreds(t, f.a, tokenCaller("bob-token"), "app")
	if n := f.a.Len(); n != 2 {
		t.Fatalf("cache holds %d, want 2", n)
	}
	if p := f.clk.Pending(); p != timers {
		t.Fatalf("pending timers %d, want %d: the evicted entry's refresher must stop", p, timers)
	}
	if n := f.a.due.dueLen(); n != 2 {
		t.Fatalf("%d deadlines armed for 2 cached sessions: the evicted entry's must go", n)
	}
	before := f.src.calls.Load()
	mustCreds(t, f.a, alice, "app") // evicted (least recently used): fetched again
	if f.src.calls.Load() != before+1 {
		t.Fatal("evicted entry was not fetched again")
	}
}

func TestRetirement(t *testing.T) {
	f := newFixture(t, 100)
	mustCreds(t, f.a, alice, "app")
	f.clk.Advance(2 * time.Hour)
	if c := f.src.calls.Load(); c != 1 {
		t.Fatalf("an unused session was renewed (%d calls)", c)
	}
	if n := f.a.Len(); n != 0 {
		t.Fatalf("an expired unused session is still cached (%d)", n)
	}
}

func TestChainEachHopCached(t *testing.T) {
	f := newFixture(t, 100)
	c := mustCreds(t, f.a, alice, "chained")
	if f.src.calls.Load() != 2 {
		t.Fatalf("calls = %d, want 2 (app, then chained via app)", f.src.calls.Load())
	}
	last := f.src.reqs[1]
	if last.Via == nil || !strings.HasSuffix(last.RoleARN, "role/chained") {
		t.Fatalf("second call %+v: want chained with Via credentials", last)
	}
	if c2 := mustCreds(t, f.a, alice, "app"); c2 != last.Via {
		t.Fatal("the first hop is not served from the cache")
	}
	_ = c
}

func TestReloadDropsOnlyChangedRoles(t *testing.T) {
	f := newFixture(t, 100)
	app := mustCreds(t, f.a, alice, "app")
	short := mustCreds(t, f.a, alice, "short")
	changed := strings.Replace(fmt.Sprintf(testYAML, 100), "{name: short, duration: 30m}", "{name: short, duration: 45m}", 1)
	f.a.Apply(parseConfig(t, changed))
	if c := mustCreds(t, f.a, alice, "app"); c != app {
		t.Error("unchanged role lost its session")
	}
	if c := mustCreds(t, f.a, alice, "short"); c == short {
		t.Error("changed role kept its session")
	}
	// A revoked client loses access on the next request.
	revoked := strings.Replace(changed, "  - {name: alice, match: {token: alice-token}, roles: [app, short, chained]}\n", "", 1)
	f.a.Apply(parseConfig(t, revoked))
	if _, err := f.a.Credentials(context.Background(), alice, "app"); kindOf(err) != KindBadToken {
		t.Fatalf("revoked client: %v", err)
	}
}

func TestWarmStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFixture(t, 10).clk
		src := newFakeSource(clk)
		a, err := New(Options{Source: src, Clock: clk}, parseConfig(t, fmt.Sprintf(testYAML, 100)))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		waitFor(t, func() bool { return a.Len() >= 3 })
		calls := src.calls.Load()
		mustCreds(t, a, alice, "")
		mustCreds(t, a, addrCaller("127.0.0.1"), "")
		if src.calls.Load() != calls {
			t.Fatal("default-role sessions were not warm")
		}
	})
}

// waitFor lets the test's synctest bubble settle (every goroutine the agent
// started has finished or is durably blocked, e.g. waiting on the fake
// clock or a held source call), then cond must hold.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	synctest.Wait()
	if !cond() {
		t.Fatal("condition does not hold once the agent is idle")
	}
}

// A config whose secrets were never resolved must not trust the empty token.
func TestUnresolvedTokenNeverMatches(t *testing.T) {
	cfg, err := config.Parse([]byte("roles: [{name: app}]\nclients: [{name: c, match: {token: {env: NOT_RESOLVED}}, roles: [app]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Source: newFakeSource(newFixture(t, 1).clk), DisableWarm: true}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Credentials(context.Background(), &Caller{HasToken: true}, "app"); kindOf(err) != KindBadToken {
		t.Fatalf("empty token against an unresolved client: %v", err)
	}
}

func TestSourceAddressIPv4AndIPv6(t *testing.T) {
	cfg := parseConfig(t, `
sts: {mode: local, max_qps: 1000000}
roles: [{name: app}, {name: v6}]
clients:
  - {name: v6net, match: {source_cidrs: ["fd00:ec2::/64", "::1/128"]}, roles: [v6]}
  - {name: compose, match: {source_cidrs: ["169.254.170.0/24"]}, roles: [app]}
`)
	a, err := New(Options{Source: newFakeSource(newFixture(t, 1).clk), DisableWarm: true}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for addr, want := range map[string]string{
		"::1": "v6net", "fd00:ec2::23": "v6net", "169.254.170.10": "compose",
		"::ffff:169.254.170.11": "compose", "169.254.171.1": "", "fd00:ec3::1": "",
	} {
		id, err := a.Resolve(addrCaller(addr))
		got := id.Client()
		if got != want || (want == "" && kindOf(err) != KindNoClient) {
			t.Errorf("%s: client %q (%v), want %q", addr, got, err, want)
		}
	}
}

// TestSTSBudget: sts.max_qps is a token bucket on the agent's clock; misses
// beyond it wait for the next token instead of calling STS.
func TestSTSBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFixture(t, 1).clk
		src := newFakeSource(clk)
		cfg := parseConfig(t, `
sts: {mode: local, max_qps: 1}
roles: [{name: app, session_name: "{{.Client}}"}]
clients:
  - {name: one, match: {token: t1}, roles: [app]}
  - {name: two, match: {token: t2}, roles: [app]}
`)
		a, err := New(Options{Source: src, Clock: clk, DisableWarm: true}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		mustCreds(t, a, tokenCaller("t1"), "app")
		timers := clk.Pending()
		done := make(chan error, 1)
		go func() {
			_, err := a.Credentials(context.Background(), tokenCaller("t2"), "app")
			done <- err
		}()
		waitFor(t, func() bool { return clk.Pending() > timers }) // waiting for a token
		if c := src.calls.Load(); c != 1 {
			t.Fatalf("%d source calls with the budget spent, want 1", c)
		}
		clk.Advance(time.Second)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if c := src.calls.Load(); c != 2 {
			t.Fatalf("%d source calls after a token came back, want 2", c)
		}
	})
}

// TestBackgroundRenewalsYieldToMisses: renewals only spend the budget while
// half the burst is left.
func TestBackgroundRenewalsYieldToMisses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, 10)
		lim := rate.NewLimiter(1, 4)
		f.a.budget.Store(lim)
		now := f.clk.Now()
		lim.ReserveN(now, 3) // one token left, under half the burst
		done := make(chan error, 1)
		go func() { done <- f.a.waitBudget(context.Background(), "renewer", sched.Renewal) }()
		waitFor(t, func() bool { return f.clk.Pending() > 0 })
		if tok := lim.TokensAt(now); tok < 0.99 {
			t.Fatalf("the background renewal spent the last tokens (%.2f left)", tok)
		}
		if err := f.a.waitBudget(context.Background(), "miss", sched.Caller); err != nil { // a miss may take it
			t.Fatal(err)
		}
		f.clk.Advance(3 * time.Second) // refill to half the burst
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// A session used once and then retired (not renewed) is renewed in the
// foreground when its caller comes back inside the SDKs' stale window:
// never credentials with under 15 minutes left while STS is healthy.
func TestRetiredSessionNotHandedOutStale(t *testing.T) {
	f := newFixture(t, 100)
	first := mustCreds(t, f.a, alice, "app") // 1h
	f.clk.Advance(50 * time.Minute)          // retired at its refresh point
	c := mustCreds(t, f.a, alice, "app")
	if c == first || c.Expiration.Sub(f.clk.Now()) < 15*time.Minute {
		t.Fatalf("handed credentials with %s left", c.Expiration.Sub(f.clk.Now()))
	}
}

func TestReloadResizesCache(t *testing.T) {
	f := newFixture(t, 2)
	f.a.Apply(parseConfig(t, fmt.Sprintf(testYAML, 100)))
	mustCreds(t, f.a, alice, "app")
	mustCreds(t, f.a, alice, "short")
	mustCreds(t, f.a, tokenCaller("bob-token"), "app")
	if n := f.a.Len(); n != 3 {
		t.Fatalf("after raising max_entries to 100 the cache holds %d, want 3", n)
	}
}

// Moving a role in the file (its lines change, its definition does not)
// keeps its sessions.
func TestLineShiftKeepsSessions(t *testing.T) {
	yml := `
sts: {mode: local, max_qps: 1000000}
roles:
  - name: app
    session_policy: {Version: 2012-10-17, Statement: [{Effect: Allow, Action: "s3:*", Resource: "*"}]}
clients:
  - {name: c, match: {token: t}, roles: [app]}
`
	f := newFixture(t, 10)
	f.a.Apply(parseConfig(t, yml))
	before := mustCreds(t, f.a, tokenCaller("t"), "app")
	f.a.Apply(parseConfig(t, "# a comment\n\n"+yml))
	if after := mustCreds(t, f.a, tokenCaller("t"), "app"); after != before {
		t.Fatal("a line shift dropped the session of an unchanged role")
	}
}

// TestTokenNeverFallsBack: a token whose clients all fail their other
// conditions is refused (401); it does not fall through to an address-based
// client listed after them. A token-less client listed before them still
// wins, as file order says.
func TestTokenNeverFallsBack(t *testing.T) {
	cfg := parseConfig(t, `
roles: [{name: app}, {name: wide}]
clients:
  - {name: pinned, match: {token: t1, source_cidrs: ["127.0.0.2/32"]}, roles: [app]}
  - {name: net, match: {source_cidrs: ["127.0.0.0/8"]}, roles: [wide]}
`)
	a, err := New(Options{Source: newFakeSource(newFixture(t, 1).clk), DisableWarm: true}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	wrongAddr := &Caller{Token: "t1", HasToken: true, Addr: netip.MustParseAddr("127.0.0.1")}
	if id, err := a.Resolve(wrongAddr); kindOf(err) != KindBadToken {
		t.Fatalf("token of pinned from another address: client %q, %v; want a 401 refusal", id.Client(), err)
	}
	rightAddr := &Caller{Token: "t1", HasToken: true, Addr: netip.MustParseAddr("127.0.0.2")}
	if id, err := a.Resolve(rightAddr); err != nil || id.Client() != "pinned" {
		t.Fatalf("token of pinned from its address: %q, %v", id.Client(), err)
	}
	if id, err := a.Resolve(addrCaller("127.0.0.1")); err != nil || id.Client() != "net" {
		t.Fatalf("token-less caller: %q, %v", id.Client(), err)
	}

	first := parseConfig(t, `
roles: [{name: app}, {name: wide}]
clients:
  - {name: net, match: {source_cidrs: ["127.0.0.0/8"]}, roles: [wide]}
  - {name: pinned, match: {token: t1, source_cidrs: ["127.0.0.2/32"]}, roles: [app]}
`)
	a.Apply(first)
	if id, err := a.Resolve(wrongAddr); err != nil || id.Client() != "net" {
		t.Fatalf("a token-less client listed first wins: %q, %v", id.Client(), err)
	}
}
