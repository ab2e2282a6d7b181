package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/credsidecar/credsidecar/agent/sched"
)

// manyClients is a config of n token clients c0…c(n-1) sharing role app,
// with the given cache.warm_max and sts.max_qps, plus extra clients.
func manyClients(n, warmMax int, qps float64, extra string) string {
	return manyClientsMatching(n, warmMax, qps, extra, "token: token-%d")
}

// manyUIDClients is manyClients matching uids 1000+i instead of tokens:
// with uidNode, all of them can be seen to hold on the node.
func manyUIDClients(n, warmMax int, qps float64) string {
	return manyClientsMatching(n, warmMax, qps, "", "uids: [%d]")
}

// uidNode has a process of every uid.
type uidNode struct{ fakeNode }

func (uidNode) UIDs() ([]uint32, bool) {
	var out []uint32
	for u := range uint32(20000) {
		out = append(out, u)
	}
	return out, true
}

func uidCaller(i int) *Caller {
	return &Caller{UID: func() (uint32, error) { return uint32(1000 + i), nil }}
}

func manyClientsMatching(n, warmMax int, qps float64, extra, match string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cache: {warm_max: %d}\nsts: {mode: local, max_qps: %g}\nroles:\n  - {name: app, duration: 1h}\n  - {name: other, duration: 1h}\nclients:\n", warmMax, qps)
	b.WriteString(extra)
	for i := range n {
		m := fmt.Sprintf(match, i)
		if strings.HasPrefix(match, "uids") {
			m = fmt.Sprintf(match, 1000+i)
		}
		fmt.Fprintf(&b, "  - {name: c%d, match: {%s}, roles: [app]}\n", i, m)
	}
	return b.String()
}

// sessionsAsked lists the session names the source was asked for, in order.
func (f *fakeSource) sessionsAsked() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reqs {
		out = append(out, r.SessionName)
	}
	return out
}

// TestWarmUpIsBounded: a config of 10 000 clients that all hold on the
// node costs warm_max STS calls at start, not 10 000 — the first warm_max
// in file order; 10 000 token clients, which nothing tells apart, cost
// none (TestWarmSkipsUnknownInLargeConfigs).
func TestWarmUpIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFixture(t, 1).clk
		src := newFakeSource(clk)
		a, err := New(Options{Source: src, Clock: clk, Node: uidNode{}, Rand: func() float64 { return 0.5 }}, parseConfig(t, manyUIDClients(10000, 64, 10)))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		synctest.Wait() // the warm-up has chosen and spent the burst
		for range 60 {  // a minute: the budget allows 600 calls
			clk.AdvanceSettling(time.Second, synctest.Wait)
		}
		synctest.Wait()
		got := src.sessionsAsked()
		t.Logf("10 000 clients, warm_max 64: %d STS calls in the first minute", len(got))
		if len(got) != 64 {
			t.Fatalf("%d STS calls at start, want warm_max = 64", len(got))
		}
		slices.Sort(got)
		var want []string
		for i := range 64 {
			want = append(want, fmt.Sprintf("c%d", i))
		}
		slices.Sort(want)
		if !slices.Equal(want, got) {
			t.Fatalf("warmed %v, want %v", got, want)
		}
	})
}

// TestCallerDoesNotWaitBehindWarmUp: a caller that is not warm, arriving
// while the warm-up still has most of its calls to make, gets the next
// token; the warm-up's remaining calls come after it.
func TestCallerDoesNotWaitBehindWarmUp(t *testing.T) {
	for _, qps := range []float64{1, 2, 10} {
		t.Run(fmt.Sprintf("max_qps=%g", qps), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := newFixture(t, 1).clk
				src := newFakeSource(clk)
				a, err := New(Options{Source: src, Clock: clk, Node: uidNode{}, FetchTimeout: time.Hour}, parseConfig(t, manyUIDClients(10000, 64, qps)))
				if err != nil {
					t.Fatal(err)
				}
				defer a.Close()
				synctest.Wait()
				clk.AdvanceSettling(time.Second, synctest.Wait)
				before := len(src.sessionsAsked())
				start := clk.Now()
				done := make(chan error, 1)
				go func() {
					_, err := a.Credentials(context.Background(), uidCaller(9000), "")
					done <- err
				}()
				for step := 0; ; step++ {
					synctest.Wait()
					select {
					case err := <-done:
						if err != nil {
							t.Fatal(err)
						}
						asked := src.sessionsAsked()
						at := slices.Index(asked, "c9000")
						t.Logf("max_qps %g: the caller was call %d, %d warm-up calls before it; waited %s", qps, at+1, before, clk.Now().Sub(start))
						if at != before {
							t.Fatalf("the caller's STS call came after %d warm-up calls made while it waited", at-before)
						}
						if w := clk.Now().Sub(start); w > time.Duration(float64(time.Second)/qps) {
							t.Fatalf("the caller waited %s, more than one token's time", w)
						}
						return
					default:
					}
					if step > 100 {
						t.Fatal("the caller was never served")
					}
					clk.AdvanceSettling(100*time.Millisecond, synctest.Wait)
				}
			})
		})
	}
}

// TestReloadWarmsWithinTheCap: a reload that changes the warmed clients'
// role refetches them (and only them: the cap counts cached sessions, so
// reloads do not warm more and more of a large config).
func TestReloadWarmsWithinTheCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFixture(t, 1).clk
		src := newFakeSource(clk)
		a, err := New(Options{Source: src, Clock: clk, Node: uidNode{}}, parseConfig(t, manyUIDClients(1000, 8, 100)))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		synctest.Wait()
		clk.AdvanceSettling(time.Second, synctest.Wait)
		if n := src.calls.Load(); n != 8 {
			t.Fatalf("%d calls at start, want 8", n)
		}
		// Unchanged: nothing to fetch.
		a.Apply(parseConfig(t, manyUIDClients(1000, 8, 100)))
		synctest.Wait()
		clk.AdvanceSettling(time.Second, synctest.Wait)
		if n := src.calls.Load(); n != 8 {
			t.Fatalf("%d calls after a reload that changed nothing, want 8", n)
		}
		// The role changed: its sessions are dropped and the 8 refetched.
		changed := strings.Replace(manyUIDClients(1000, 8, 100), "{name: app, duration: 1h}", "{name: app, duration: 2h}", 1)
		a.Apply(parseConfig(t, changed))
		synctest.Wait()
		clk.AdvanceSettling(time.Second, synctest.Wait)
		if n := src.calls.Load(); n != 16 {
			t.Fatalf("%d calls after a reload that changed the role, want 16", n)
		}
		// A new client listed first is warmed within the cap.
		first := "  - {name: newcomer, match: {uids: [99]}, roles: [other]}\n"
		a.Apply(parseConfig(t, strings.Replace(changed, "clients:\n", "clients:\n"+first, 1)))
		synctest.Wait()
		clk.AdvanceSettling(time.Second, synctest.Wait)
		asked := src.sessionsAsked()
		if n := len(asked); n != 17 || asked[16] != "newcomer" {
			t.Fatalf("after adding a client: calls %v, want 17 ending with newcomer", asked)
		}
		if a.Len() > 9 {
			t.Fatalf("%d sessions cached: the warm-up went past its cap", a.Len())
		}
	})
}

// TestWarmUpPrefersRecentAndLocal: after a reload, clients asked for here
// come first, then those the node's facts say hold here; those they say
// cannot hold are never warmed.
func TestWarmUpPrefersRecentAndLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFixture(t, 1).clk
		src := newFakeSource(clk)
		extra := "" +
			"  - {name: elsewhere, match: {source_cidrs: [\"10.9.0.0/16\"]}, roles: [app]}\n" +
			"  - {name: nouid, match: {uids: [4242]}, roles: [app]}\n" +
			"  - {name: nounit, match: {systemd_unit: gone.service}, roles: [app]}\n" +
			"  - {name: noctr, match: {container: {labels: {app: gone}}}, roles: [app]}\n" +
			"  - {name: here, match: {source_cidrs: [\"10.1.0.0/16\"]}, roles: [app]}\n" +
			"  - {name: myuid, match: {uids: [1000]}, roles: [app]}\n" +
			"  - {name: myunit, match: {systemd_unit: \"web*.service\"}, roles: [app]}\n" +
			"  - {name: myctr, match: {container: {labels: {app: web}}}, roles: [app]}\n"
		node := fakeNode{
			addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("10.1.2.3")},
			uids:  []uint32{0, 1000},
			procs: []Process{{Unit: "web-1.service"}, {Unit: "sshd.service"}},
			ctrs:  []Container{{Name: "w", Labels: map[string]string{"app": "web"}}},
		}
		a, err := New(Options{Source: src, Clock: clk, Node: node, DisableWarm: true}, parseConfig(t, manyClients(100, 6, 1000, extra)))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		// c50 and then c70 ask; c70's session is later dropped by a reload
		// that changes its role (recency survives in the agent's memory).
		mustCreds(t, a, tokenCaller("token-50"), "")
		clk.Advance(time.Minute)
		mustCreds(t, a, tokenCaller("token-70"), "")
		clk.Advance(time.Minute)
		mustCreds(t, a, tokenCaller("token-50"), "") // a hit: recency from the cache
		a.warm = true
		before := len(src.sessionsAsked())
		a.Apply(parseConfig(t, strings.Replace(manyClients(100, 6, 1000, extra), "{name: app, duration: 1h}", "{name: app, duration: 2h}", 1)))
		synctest.Wait()
		clk.AdvanceSettling(time.Second, synctest.Wait)
		got := src.sessionsAsked()[before:]
		slices.Sort(got)
		// Asked first (c50, c70), then the four that hold here; none that
		// cannot hold, and no token client from file order (the cap is 6).
		want := []string{"c50", "c70", "here", "myctr", "myuid", "myunit"}
		if !slices.Equal(want, got) {
			t.Fatalf("warmed after reload %v, want %v", got, want)
		}
	})
}

type fakeNode struct {
	addrs []netip.Addr
	uids  []uint32
	procs []Process
	ctrs  []Container
}

func (n fakeNode) Addrs() ([]netip.Addr, bool)     { return n.addrs, n.addrs != nil }
func (n fakeNode) UIDs() ([]uint32, bool)          { return n.uids, n.uids != nil }
func (n fakeNode) Processes() ([]Process, bool)    { return n.procs, n.procs != nil }
func (n fakeNode) Containers() ([]Container, bool) { return n.ctrs, n.ctrs != nil }

// TestWarmOrder is the choice itself, as a table.
func TestWarmOrder(t *testing.T) {
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	cands := []sched.Candidate{
		{Seen: sched.Unknown},                   // 0
		{Seen: sched.Never, LastAsked: at(9)},   // 1: asked, but cannot hold now
		{Seen: sched.Holds},                     // 2
		{Seen: sched.Unknown, LastAsked: at(1)}, // 3
		{Seen: sched.Holds, LastAsked: at(5)},   // 4
		{Seen: sched.Never},                     // 5
		{Seen: sched.Unknown},                   // 6
	}
	for _, tc := range []struct {
		limit int
		want  []int
	}{
		{0, nil},
		{1, []int{4}},
		{3, []int{4, 3, 2}},
		// Five could be here: over a limit of 4, the unknown ones are
		// left out; within a limit of 5, there is no choice to make.
		{4, []int{4, 3, 2}},
		{5, []int{4, 3, 2, 0, 6}},
		{10, []int{4, 3, 2, 0, 6}},
	} {
		if got := sched.WarmOrder(cands, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("WarmOrder(limit %d) = %v, want %v", tc.limit, got, tc.want)
		}
	}
}

// TestOutageProbesOnce: while STS fails, a node's background renewals
// probe it one at a time (sched.ProbeDue) instead of each session
// retrying on its own, and every session is still renewed soon after STS
// is back — no caller is handed expired credentials meanwhile.
func TestOutageProbesOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFixture(t, 1).clk
		src := newFakeSource(clk)
		a, err := New(Options{Source: src, Clock: clk, Rand: func() float64 { return 0.5 }}, parseConfig(t, manyClients(20, 20, 1000, "")))
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		synctest.Wait()
		if n := src.calls.Load(); n != 20 {
			t.Fatalf("%d sessions warmed, want 20", n)
		}
		use := func() {
			for i := range 20 {
				creds, err := a.Credentials(context.Background(), tokenCaller(fmt.Sprintf("token-%d", i)), "")
				if err != nil {
					t.Fatalf("c%d: %v", i, err)
				}
				if !clk.Now().Before(creds.Expiration) {
					t.Fatalf("c%d: expired credentials handed out", i)
				}
			}
		}
		use()
		clk.AdvanceSettling(25*time.Minute, synctest.Wait) // short of the refresh points
		use()
		before := src.calls.Load()
		src.setFail(throttled)
		for range 20 {
			clk.AdvanceSettling(time.Minute, synctest.Wait)
			use()
		}
		during := src.calls.Load() - before
		src.setFail(nil)
		for range 5 {
			clk.AdvanceSettling(time.Minute, synctest.Wait)
			use()
		}
		t.Logf("20 sessions, a 20-minute outage across their refresh points: %d STS calls during it", during)
		// Unprobed, each of the 20 would retry on its own: about 8 quick
		// retries each before reaching the cap, then one per half cap.
		if during > 40 {
			t.Fatalf("%d STS calls during the outage: the sessions did not share the probing", during)
		}
		var fresh int
		for i := range 20 {
			creds := mustCreds(t, a, tokenCaller(fmt.Sprintf("token-%d", i)), "")
			if creds.Issued.After(t0.Add(45 * time.Minute)) {
				fresh++
			}
		}
		if fresh != 20 {
			t.Fatalf("%d of 20 sessions renewed within 5 minutes of the outage's end", fresh)
		}
	})
}

// TestRecentIsBounded: the memory of who asked keeps the most recent and
// stays bounded however many clients come and go.
func TestRecentIsBounded(t *testing.T) {
	a := &Agent{}
	for i := range 3 * recentMax {
		a.noteAsked(fmt.Sprintf("c%d", i), t0.Add(time.Duration(i)*time.Second))
	}
	if n := len(a.warming.recent); n > recentMax {
		t.Fatalf("%d clients remembered, bound %d", n, recentMax)
	}
	if _, ok := a.warming.recent[fmt.Sprintf("c%d", 3*recentMax-1)]; !ok {
		t.Fatal("the most recent client was forgotten")
	}
	if _, ok := a.warming.recent["c0"]; ok {
		t.Fatal("the stalest client is still remembered")
	}
}

// TestRecentFullDropsOldNotes: with the memory full, a note older than
// the median of the times remembered is dropped and changes nothing; one
// at the median or newer forgets the stalest half and is kept.
func TestRecentFullDropsOldNotes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 20 {
		a := &Agent{}
		times := make([]int64, 0, recentMax)
		for i := range recentMax {
			ns := rng.Int64N(1000) // repeats, so the median ties
			a.noteAsked(fmt.Sprintf("c%d", i), time.Unix(0, ns))
			times = append(times, ns)
		}
		slices.Sort(times)
		cut := times[len(times)/2]
		ns := cut + rng.Int64N(5) - 2
		a.noteAsked("new", time.Unix(0, ns))
		_, kept := a.warming.recent["new"]
		if kept != (ns >= cut) {
			t.Fatalf("round %d: a note at %d with the median at %d kept = %v", round, ns, cut, kept)
		}
		if !kept && len(a.warming.recent) != recentMax {
			t.Fatalf("round %d: a dropped note changed the memory (%d remembered)", round, len(a.warming.recent))
		}
		if kept && len(a.warming.recent) > recentMax/2+1+countAt(times, cut) {
			t.Fatalf("round %d: %d remembered after forgetting the stalest half", round, len(a.warming.recent))
		}
	}
}

// countAt is how many of the sorted times equal v.
func countAt(times []int64, v int64) int {
	n := 0
	for _, t := range times {
		if t == v {
			n++
		}
	}
	return n
}

// TestWarmSkipsUnknownInLargeConfigs: a DaemonSet's config lists the
// whole cluster's token clients, and nothing on the node tells which are
// this node's: warming the first warm_max in file order would spend
// warm_max STS calls per restart for other nodes' clients, so none is
// warmed. A small config is warmed whole, as there is no choice to make.
func TestWarmSkipsUnknownInLargeConfigs(t *testing.T) {
	for _, tc := range []struct {
		clients int
		want    int64
	}{{10000, 0}, {64, 64}} {
		synctest.Test(t, func(t *testing.T) {
			clk := newFixture(t, 1).clk
			src := newFakeSource(clk)
			a, err := New(Options{Source: src, Clock: clk}, parseConfig(t, manyClients(tc.clients, 64, 1000, "")))
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			synctest.Wait()
			clk.AdvanceSettling(time.Second, synctest.Wait)
			if n := src.calls.Load(); n != tc.want {
				t.Fatalf("%d token clients: %d warmed, want %d", tc.clients, n, tc.want)
			}
		})
	}
}

// countingNode counts what the warm-up asks of the node.
type countingNode struct {
	fakeNode
	uids, procs, ctrs int
}

func (n *countingNode) UIDs() ([]uint32, bool)          { n.uids++; return n.fakeNode.UIDs() }
func (n *countingNode) Processes() ([]Process, bool)    { n.procs++; return n.fakeNode.Processes() }
func (n *countingNode) Containers() ([]Container, bool) { n.ctrs++; return n.fakeNode.Containers() }

// TestSnapshotAsksOnlyWhatIsNeeded: the node is asked for uids, processes
// or containers only when some client's conditions read them (a host node
// lists /proc to answer).
func TestSnapshotAsksOnlyWhatIsNeeded(t *testing.T) {
	st := compile(parseConfig(t, `
roles: [{name: app}]
clients:
  - {name: net, match: {source_cidrs: ["127.0.0.0/8"]}, roles: [app]}
  - {name: tok, match: {token: {sha256: 0c3732c1542212e0e6d3cc3e20dfe33c746030f2135d8d730416987aae88980d}}, roles: [app]}
`))
	n := &countingNode{}
	snapshotNode(n, st.clients)
	if n.uids+n.procs+n.ctrs != 0 {
		t.Fatalf("asked for uids %d, processes %d, containers %d times with no client needing them", n.uids, n.procs, n.ctrs)
	}
	st = compile(parseConfig(t, `
roles: [{name: app}]
clients:
  - {name: u, match: {uids: [1000]}, roles: [app]}
  - {name: unit, match: {systemd_unit: billing.service}, roles: [app]}
`))
	snapshotNode(n, st.clients)
	if n.uids != 1 || n.procs != 1 || n.ctrs != 0 {
		t.Fatalf("asked for uids %d, processes %d, containers %d times; want 1, 1, 0", n.uids, n.procs, n.ctrs)
	}
}

// TestSeenByPresence: a workload with nothing running yet (a service that
// starts after the sidecar) is no evidence against its client; an address
// the node lacks is.
func TestSeenByPresence(t *testing.T) {
	st := compile(parseConfig(t, `
roles: [{name: app}]
clients:
  - {name: u, match: {uids: [1000]}, roles: [app]}
  - {name: unit, match: {systemd_unit: billing.service}, roles: [app]}
  - {name: far, match: {source_cidrs: ["169.254.9.0/24"]}, roles: [app]}
`))
	empty := snapshotNode(fakeNode{addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}, uids: []uint32{}, procs: []Process{}}, st.clients)
	for i, want := range []sched.Seen{sched.Unknown, sched.Unknown, sched.Never} {
		if got := empty.seen(st.clients[i]); got != want {
			t.Errorf("nothing running: %s seen %v, want %v", st.clients[i].name, got, want)
		}
	}
	running := snapshotNode(fakeNode{addrs: []netip.Addr{netip.MustParseAddr("169.254.9.3")}, uids: []uint32{1000}, procs: []Process{{PID: 7, Unit: "billing.service", Cgroup: "system.slice/billing.service"}}}, st.clients)
	for i := range st.clients {
		if got := running.seen(st.clients[i]); got != sched.Holds {
			t.Errorf("running: %s seen %v, want Holds", st.clients[i].name, got)
		}
	}
}
