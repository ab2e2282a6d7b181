package agent

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent/sched"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/cut"
)

// Node is what the daemon knows about this node, for the warm-up's choice
// of clients. The agent does no I/O: the daemon implements Node over what
// it can learn cheaply (interface addresses, /proc, the container
// runtime's list). Each method returns ok false when it cannot tell; the
// conditions on that attribute then count as unknown, neither holding nor
// failing.
type Node interface {
	// Addrs are the node's own interface addresses.
	Addrs() (addrs []netip.Addr, ok bool)
	// UIDs are the uids owning a running process.
	UIDs() (uids []uint32, ok bool)
	// Processes are the running processes, as attestation would describe
	// them (ExeSHA256 may be empty: hashing every executable is not cheap).
	Processes() (procs []Process, ok bool)
	// Containers are the running containers.
	Containers() (ctrs []Container, ok bool)
}

const (
	// recentMax bounds how many clients' last request the agent remembers
	// for the warm-up (beyond those with cached sessions).
	recentMax = 4096
	// lanePaid: retrieve's caller already took the budget token.
	lanePaid sched.Lane = -1
)

// warming is the warm-up's state: the node's facts, who asked recently,
// and which warm-up is current.
type warming struct {
	node Node
	mu   sync.Mutex
	// recent maps a client's name to when a caller last asked for one of
	// its sessions (unix ns), as far as cached sessions no longer tell:
	// it is written on misses and evictions, so it survives reloads that
	// drop sessions. Not across restarts: that would need a state file
	// the sidecar does not have (it runs with a read-only file system).
	recent map[string]int64
	// gen numbers warm-ups: a reload's warm-up ends the previous one.
	gen atomic.Uint64
}

// noteAsked records that a caller asked for a session of client at at.
func (a *Agent) noteAsked(client string, at time.Time) {
	w := &a.warming
	ns := at.UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.recent == nil {
		w.recent = map[string]int64{}
	}
	if old, ok := w.recent[client]; ok {
		w.recent[client] = max(old, ns)
		return
	}
	if len(w.recent) >= recentMax {
		// A note older than the median (cut below) is dropped. Told in
		// one pass, without the sort: ns < cut iff at most half the
		// times are <= ns. Evictions at the cache's bound (on a
		// caller's miss) note least recently used sessions, mostly such
		// notes, and sorted the whole memory for each.
		notNewer := 0
		for _, t := range w.recent {
			if t <= ns {
				notNewer++
			}
		}
		if notNewer <= len(w.recent)/2 {
			return
		}
		// Forget the stalest half in one pass: a reload that drops
		// thousands of sessions notes each, and must not scan the map
		// for every one.
		times := make([]int64, 0, len(w.recent))
		for _, t := range w.recent {
			times = append(times, t)
		}
		slices.Sort(times)
		cut := times[len(times)/2]
		for c, t := range w.recent {
			if t < cut {
				delete(w.recent, c)
			}
		}
	}
	w.recent[client] = ns
}

// warmUp fetches, in the background, the default-role sessions of at most
// cache.warm_max clients, those most likely to ask on this node first
// (sched.WarmOrder), so an SDK's first call (one second, one attempt for
// botocore and JS) hits. Its fetches take only STS budget no caller is
// waiting for. A later warm-up (a reload) ends this one.
func (a *Agent) warmUp(st *state) {
	gen := a.warming.gen.Add(1)
	run := a.beginWarm() // Warmed's signal: ended when every fetch returned
	limit := st.cfg.Cache.WarmMax
	if limit <= 0 || len(st.clients) == 0 {
		run.end()
		return
	}
	if !a.track() {
		run.end()
		return
	}
	go func() {
		defer a.wg.Done()
		defer run.end()
		picks := a.warmChoice(st, limit)
		a.log.Info("warm-up", zap.Int("clients", len(st.clients)), zap.Int("chosen", len(picks)), zap.Int("warm_max", limit))
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(sched.WarmWorkers, len(picks)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= len(picks) || a.warming.gen.Load() != gen || a.ctx.Err() != nil {
						return
					}
					a.warmOne(st, picks[i])
				}
			}()
		}
		wg.Wait()
	}()
}

// warmChoice picks the clients to warm, in order.
func (a *Agent) warmChoice(st *state, limit int) []*client {
	var eligible []*client
	for _, cl := range st.clients {
		if _, ok := cl.memoized(cl.defaultRole()); ok && st.roles[cl.defaultRole()] != nil {
			// (Per-caller session names cannot be known in advance.)
			eligible = append(eligible, cl)
		}
	}
	if len(eligible) == 0 {
		return nil
	}
	asked := map[string]int64{}
	a.entries.Range(func(_, v any) bool {
		e := v.(*entry)
		if ns := e.lastUsedNs.Load(); ns > asked[e.client] {
			asked[e.client] = ns
		}
		return true
	})
	a.warming.mu.Lock()
	for c, ns := range a.warming.recent {
		asked[c] = max(asked[c], ns)
	}
	a.warming.mu.Unlock()
	var facts nodeFacts
	if a.warming.node != nil {
		facts = snapshotNode(a.warming.node, eligible)
	}
	cands := make([]sched.Candidate, len(eligible))
	for i, cl := range eligible {
		cands[i].Seen = facts.seen(cl)
		if ns := asked[cl.name]; ns > 0 {
			cands[i].LastAsked = time.Unix(0, ns)
		}
	}
	idx := sched.WarmOrder(cands, limit)
	out := make([]*client, len(idx))
	for i, j := range idx {
		out[i] = eligible[j]
	}
	return out
}

// warmOne fetches cl's default-role session unless it is cached. The
// budget is taken before joining the session's single flight: a caller
// asking meanwhile starts (or joins) a flight of its own lane, never one
// waiting in the warm-up's.
func (a *Agent) warmOne(st *state, cl *client) {
	r := st.roles[cl.defaultRole()]
	id, _ := cl.memoized(cl.defaultRole())
	if a.cached(id.key) {
		return
	}
	ctx, cancel := withClockTimeout(a.ctx, a.clk, a.timeout)
	defer cancel()
	if err := a.waitBudget(ctx, cl.name, sched.Warm); err != nil {
		// The budget stayed with callers for the whole fetch deadline:
		// they come first. The session is fetched when asked for.
		a.log.Debug("warm-up fetch skipped", zap.String("client", cl.name), zap.String("role", r.cfg.Name), zap.String("error", err.Error()))
		return
	}
	e := a.newEntry(st, cl, r, id, &Caller{})
	_, err, _ := a.flight.Do(id.key, func() (any, error) {
		if v, ok := a.entries.Load(id.key); ok {
			if creds, at := v.(*entry).load(); creds != nil && a.clk.Now().Before(at) {
				return creds, nil // a caller fetched it meanwhile
			}
		}
		return a.retrieve(e, lanePaid)
	})
	if err != nil && a.ctx.Err() == nil {
		a.log.Warn("warm-up fetch failed", zap.String("client", cl.name), zap.String("role", r.cfg.Name), zap.String("error", cut.String(err.Error(), maxLoggedError)))
	}
}

// cached reports whether key has valid credentials in the cache.
func (a *Agent) cached(key string) bool {
	v, ok := a.entries.Load(key)
	if !ok {
		return false
	}
	creds := v.(*entry).credsNow()
	return creds != nil && a.clk.Now().Before(creds.Expiration)
}

// nodeFacts is one snapshot of a Node's answers.
type nodeFacts struct {
	addrs           []netip.Addr
	uids            []uint32
	procs           []Process
	ctrs            []Container
	addrsOK, uidsOK bool
	procsOK, ctrsOK bool
}

// snapshotNode asks n only what some of the clients' conditions need (a
// node may have to list /proc or ask the Docker API to answer).
func snapshotNode(n Node, clients []*client) nodeFacts {
	var f nodeFacts
	var uids, procs, ctrs bool
	for _, cl := range clients {
		uids = uids || len(cl.uids) > 0
		if cl.wl != nil {
			procs = procs || cl.wl.w.NeedsProcess()
			ctrs = ctrs || cl.wl.w.Container != nil
		}
	}
	f.addrs, f.addrsOK = n.Addrs()
	if uids {
		f.uids, f.uidsOK = n.UIDs()
	}
	if procs {
		f.procs, f.procsOK = n.Processes()
	}
	if ctrs {
		f.ctrs, f.ctrsOK = n.Containers()
	}
	return f
}

// seen is the facts' verdict on cl's conditions: Never when one of them
// holds for nothing here, Holds when each holds for something here, else
// Unknown. Conditions are judged one at a time (a uid with a process and
// a unit with a process need not be the same process): the verdict is a
// guess at likelihood, never a trust decision.
func (f *nodeFacts) seen(cl *client) sched.Seen {
	verdict := sched.Holds
	part := func(s sched.Seen) {
		switch {
		case s == sched.Never:
			verdict = sched.Never
		case s == sched.Unknown && verdict == sched.Holds:
			verdict = sched.Unknown
		}
	}
	judge := func(known, any bool) sched.Seen {
		switch {
		case !known:
			return sched.Unknown
		case any:
			return sched.Holds
		default:
			return sched.Never
		}
	}
	// Workloads are judged by presence only: a uid, unit or container with
	// nothing running yet is no evidence against its client, since a host
	// daemon starts before the services that will ask it
	// (After=credsidecar.service) and Compose starts the sidecar before
	// the apps that depend on it. An address the node does not have is.
	present := func(known, any bool) sched.Seen {
		if known && any {
			return sched.Holds
		}
		return sched.Unknown
	}
	if cl.tokenHash != nil || cl.jwt != nil {
		part(sched.Unknown) // a token can be presented from anywhere
	}
	if len(cl.cidrs) > 0 {
		part(judge(f.addrsOK, slices.ContainsFunc(f.addrs, func(a netip.Addr) bool { return containsAddr(cl.cidrs, a) })))
	}
	if len(cl.uids) > 0 {
		part(present(f.uidsOK, slices.ContainsFunc(f.uids, func(u uint32) bool { return slices.Contains(cl.uids, u) })))
	}
	if cl.wl != nil {
		w := cl.wl.w
		if w.NeedsProcess() {
			pm := workloadMatch{w: &config.Workload{SystemdUnit: w.SystemdUnit, SystemdUserUnit: w.SystemdUserUnit, CGroup: w.CGroup, Exe: w.Exe}}
			if w.ExeSHA256 != "" {
				part(sched.Unknown) // executables are not hashed for this
			}
			if pm.w.NeedsProcess() {
				part(present(f.procsOK, slices.ContainsFunc(f.procs, func(p Process) bool {
					key, _ := pm.check(&attrs{procDone: true, proc: &p})
					return key == ""
				})))
			}
		}
		if w.Container != nil {
			cm := workloadMatch{w: &config.Workload{Container: w.Container}}
			part(present(f.ctrsOK, slices.ContainsFunc(f.ctrs, func(c Container) bool {
				key, _ := cm.check(&attrs{ctrDone: true, ctr: &c})
				return key == ""
			})))
		}
	}
	return verdict
}
