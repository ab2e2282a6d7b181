package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"golang.org/x/time/rate"

	"github.com/credsidecar/credsidecar/agent/sched"
)

// Params describe a fleet: Nodes sidecars, each with Sessions sessions
// (one per client, each client's default role) that a caller uses all the
// time, and the settings every sidecar runs with.
type Params struct {
	Nodes, Sessions int
	// Life is the sessions' duration (the role's duration).
	Life time.Duration
	// MaxQPS is sts.max_qps (per node); WarmMax is cache.warm_max;
	// ErrorTTL is cache.error_ttl.
	MaxQPS   float64
	WarmMax  int
	ErrorTTL time.Duration
	// STSLatency is how long one STS call takes.
	STSLatency time.Duration
	// Day is the simulated time over which calls per second are counted.
	Day time.Duration
	// At is when, within the day, the scenario's event happens.
	At time.Duration
	// Outage is how long STS fails (every call) from At, in the outage
	// scenario.
	Outage time.Duration
	// FirstCalls: after a restart, each session's first caller asks at a
	// uniformly random time within this window.
	FirstCalls time.Duration
	// RolloutSpread: a config rollout reaches each node at a uniformly
	// random time within this window after At (a ConfigMap reaches
	// kubelets over about a minute).
	RolloutSpread time.Duration
	// Seed makes a run reproducible.
	Seed uint64
}

// DefaultParams are the product's defaults for a fleet of n nodes.
func DefaultParams(nodes int) Params {
	return Params{
		Nodes: nodes, Sessions: 20, Life: time.Hour,
		MaxQPS: 10, WarmMax: 64, ErrorTTL: 5 * time.Second,
		STSLatency: 100 * time.Millisecond,
		Day:        24 * time.Hour, At: 12 * time.Hour, Outage: 20 * time.Minute,
		FirstCalls: 10 * time.Second, RolloutSpread: time.Minute,
		Seed: 1,
	}
}

// Scenario is what happens at Params.At.
type Scenario int

// Scenarios of the fleet model.
const (
	// Steady: nothing.
	Steady Scenario = iota
	// Outage: every STS call fails for Params.Outage, then STS is back at once.
	Outage
	// Rollout: a config that changes every role reaches every node.
	Rollout
	// Restart: every node restarts in the same second, caches empty.
	Restart
)

func (s Scenario) String() string {
	return [...]string{"steady state", "STS outage", "config rollout", "restart storm"}[s]
}

// Result is what one simulated day cost.
type Result struct {
	// Mean, P99 and Peak are STS calls per second over the day's
	// one-second windows; Calls is their total.
	Mean, P99 float64
	Peak      int
	Calls     int64
	// PeakAfter is the peak of the hour from Params.At; firstMinute the
	// mean calls per second of the minute from it.
	PeakAfter   int
	firstMinute float64
	// MinLeftHealthy is the least time left on a session's credentials
	// when its renewal succeeded, among renewals during which STS never
	// failed: what callers were handed at worst while STS was healthy.
	MinLeftHealthy time.Duration
	// Stale counts renewals (STS healthy) that came later than 15 minutes
	// before expiry: the invariant says none.
	Stale int
	// Expired counts sessions that expired before a renewal succeeded
	// (callers got 503 until it did).
	Expired int
	// FirstCall is the latency of each session's first call after a
	// restart (restart scenario only), sorted.
	FirstCall []time.Duration
}

// FirstCallQuantile is a quantile of FirstCall (0 when there is none).
func (r *Result) FirstCallQuantile(q float64) time.Duration {
	if len(r.FirstCall) == 0 {
		return 0
	}
	return r.FirstCall[min(len(r.FirstCall)-1, int(q*float64(len(r.FirstCall))))]
}

// FirstCallOver is the share of first calls slower than d.
func (r *Result) FirstCallOver(d time.Duration) float64 {
	if len(r.FirstCall) == 0 {
		return 0
	}
	i, _ := slices.BinarySearch(r.FirstCall, d+1)
	return float64(len(r.FirstCall)-i) / float64(len(r.FirstCall))
}

// staleWindow: SDKs (botocore, Java) renew on every call with less than
// this left; the invariant keeps healthy sessions out of it.
const staleWindow = 15 * time.Minute

// Event kinds.
const (
	evRefresh   = iota // a session's refresh point: a renewal
	evRetry            // a failed renewal's retry (backoff or a caller near expiry)
	evWake             // a node's budget has tokens for what waits
	evWarmDone         // a warm-up fetch finished (frees a worker)
	evRestart          // the node restarts
	evRollout          // the node loads a config that changes every role
	evFirstCall        // a session's first caller after a restart
)

type event struct {
	at   int64 // ns since the simulation's start
	seq  uint64
	kind uint8
	lane sched.Lane
	node int32
	sess int32
	gen  uint32
}

// queue is a calendar of one-second buckets: scheduling appends to the
// event's bucket; the current bucket is kept as a binary heap (by time,
// then scheduling order, which makes runs reproducible). Most events are
// renewals tens of minutes ahead, so this costs a sort of each second's
// few hundred events instead of a heap over all of a day's sessions.
type queue struct {
	origin  int64 // the time of bucket 0 (ns)
	buckets [][]event
	cur     int // the bucket being popped; its slice is a heap
	n       int
}

func newQueue(from, to int64) queue {
	return queue{origin: from, buckets: make([][]event, (to-from)/int64(time.Second)+1)}
}

func (q *queue) index(at int64) int { return int((at - q.origin) / int64(time.Second)) }

// push adds e; events past the calendar's end are dropped (after the day).
func (q *queue) push(e event) {
	i := max(q.index(e.at), q.cur)
	if i >= len(q.buckets) {
		return
	}
	q.n++
	if i > q.cur {
		q.buckets[i] = append(q.buckets[i], e)
		return
	}
	h := append(q.buckets[i], e)
	for j := len(h) - 1; j > 0; {
		p := (j - 1) / 2
		if !h[j].before(h[p]) {
			break
		}
		h[j], h[p] = h[p], h[j]
		j = p
	}
	q.buckets[i] = h
}

// pop removes the earliest event; ok is false when none is left.
func (q *queue) pop() (event, bool) {
	for q.cur < len(q.buckets) && len(q.buckets[q.cur]) == 0 {
		q.buckets[q.cur] = nil
		q.cur++
		if q.cur < len(q.buckets) {
			b := q.buckets[q.cur]
			slices.SortFunc(b, func(x, y event) int {
				if x.before(y) {
					return -1
				}
				if y.before(x) {
					return 1
				}
				return 0
			}) // a sorted slice is a heap
		}
	}
	if q.cur >= len(q.buckets) {
		return event{}, false
	}
	h := q.buckets[q.cur]
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h[l].before(h[m]) {
			m = l
		}
		if r < n && h[r].before(h[m]) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	q.buckets[q.cur] = h
	q.n--
	return top, true
}

func (e event) before(o event) bool {
	return e.at < o.at || (e.at == o.at && e.seq < o.seq)
}

type session struct {
	exp      int64 // current credentials' expiry (0: none)
	gen      uint32
	failures int
	// failedCycle: a call of this renewal cycle failed (the invariant
	// is only promised while STS is healthy).
	failedCycle bool
	pending     bool  // a call is queued or in flight
	waiting     int64 // a first caller waiting since (-1: none)
	expired     bool  // counted in Result.Expired this cycle
	warmQueued  bool
}

type node struct {
	lim      *rate.Limiter
	callers  []int32 // sessions whose callers wait for a token (FIFO)
	renewals []int32 // background renewals waiting for tokens (FIFO)
	warm     []int32 // the warm-up's remaining picks, in order
	inFlight int     // warm-up fetches in flight
	wakeAt   int64   // a wake is scheduled at this time (0: none)
	streak   int     // consecutive failed calls (the agent's source streak)
	// nextProbe: while streak > 0, renewals call STS only from then on
	nextProbe int64
	gen       uint32
}

type sim struct {
	p      Params
	sc     Scenario
	rnd    *rand.Rand
	base   time.Time
	start  int64 // the simulation starts this long before the day (ns, negative)
	q      queue
	seq    uint64
	nodes  []node
	ss     []session // node i's sessions are ss[i*M : (i+1)*M]
	counts []int32   // STS calls per second of the day
	res    Result
}

// Run simulates one day of scenario sc.
func Run(p Params, sc Scenario) (*Result, error) {
	s, err := runSim(p, sc)
	if err != nil {
		return nil, err
	}
	return &s.res, nil
}

func runSim(p Params, sc Scenario) (*sim, error) {
	if p.Nodes < 1 || p.Sessions < 1 || p.Life <= 0 || p.MaxQPS <= 0 || p.Day < time.Second || p.WarmMax < 0 {
		return nil, errors.New("fleet: nodes, sessions, life, max_qps and day must be positive, warm_max not negative")
	}
	if p.At < 0 || p.At >= p.Day {
		return nil, fmt.Errorf("fleet: the event time %s is not within the day of %s", p.At, p.Day)
	}
	s := &sim{
		p: p, sc: sc, rnd: rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15)),
		base:   time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		nodes:  make([]node, p.Nodes),
		ss:     make([]session, p.Nodes*p.Sessions),
		counts: make([]int32, int(p.Day/time.Second)),
	}
	s.res.MinLeftHealthy = p.Life
	// Steady state from the start: each session's refresh interval is the
	// agent's (RefreshAt with its jitter) and its age a uniformly random
	// part of it, so renewals are spread as in a fleet that has run for
	// days. Ten minutes before the day let the budgets settle.
	s.start = -int64(10 * time.Minute)
	s.q = newQueue(s.start, int64(p.Day))
	for i := range s.nodes {
		s.nodes[i].lim = s.newLimiter(s.start)
		for j := range p.Sessions {
			id := int32(i*p.Sessions + j)
			x := &s.ss[id]
			x.waiting = -1
			interval := int64(sched.RefreshAt(s.base, s.base.Add(p.Life), s.rnd.Float64()).Sub(s.base))
			issued := s.start - int64(s.rnd.Float64()*float64(interval))
			x.exp = issued + int64(p.Life)
			s.schedule(event{at: issued + interval, kind: evRefresh, node: int32(i), sess: id})
		}
		switch sc {
		case Restart:
			s.schedule(event{at: int64(p.At) + int64(s.rnd.Float64()*float64(time.Second)), kind: evRestart, node: int32(i)})
		case Rollout:
			s.schedule(event{at: int64(p.At) + int64(s.rnd.Float64()*float64(p.RolloutSpread)), kind: evRollout, node: int32(i)})
		}
	}
	for {
		e, ok := s.q.pop()
		if !ok || e.at >= int64(p.Day) {
			break
		}
		s.handle(e)
	}
	s.finish()
	return s, nil
}

func (s *sim) newLimiter(at int64) *rate.Limiter {
	burst := max(int(s.p.MaxQPS), 1) // as the agent sizes it
	lim := rate.NewLimiter(rate.Limit(s.p.MaxQPS), burst)
	lim.AllowN(s.time(at), 0) // the bucket is full from at
	return lim
}

func (s *sim) time(ns int64) time.Time { return s.base.Add(time.Duration(ns)) }

func (s *sim) schedule(e event) {
	s.seq++
	e.seq = s.seq
	s.q.push(e)
}

func (s *sim) stsDown(at int64) bool {
	return s.sc == Outage && at >= int64(s.p.At) && at < int64(s.p.At+s.p.Outage)
}

// install gives session id credentials issued at t and arms its renewal
// at the agent's refresh point.
func (s *sim) install(n, id int32, t int64) {
	x := &s.ss[id]
	x.exp = t + int64(s.p.Life)
	x.failures, x.failedCycle, x.expired = 0, false, false
	at := sched.RefreshAt(s.time(t), s.time(x.exp), s.rnd.Float64())
	s.schedule(event{at: int64(at.Sub(s.base)), kind: evRefresh, node: n, sess: id, gen: x.gen})
}

func (s *sim) handle(e event) {
	nd := &s.nodes[e.node]
	switch e.kind {
	case evRestart:
		s.reset(e.node, e.at, true)
		return
	case evRollout:
		s.reset(e.node, e.at, false)
		return
	case evWake:
		if nd.wakeAt == e.at {
			nd.wakeAt = 0
		}
		s.dispatch(e.node, e.at)
		return
	case evWarmDone:
		if e.gen == nd.gen {
			nd.inFlight--
			s.dispatch(e.node, e.at)
		}
		return
	}
	x := &s.ss[e.sess]
	if e.gen != x.gen {
		return // dropped by a restart or rollout
	}
	switch e.kind {
	case evRefresh, evRetry:
		if x.pending {
			return
		}
		if (e.kind == evRefresh || e.lane == sched.Renewal) && !sched.ProbeDue(nd.streak, s.time(e.at), s.time(nd.nextProbe)) {
			// STS is failing and another session probes it: back off
			// without calling.
			x.failedCycle = true
			s.backoff(e.node, e.sess, e.at)
			return
		}
		if (e.kind == evRefresh || e.lane == sched.Renewal) && nd.streak > 0 {
			nd.nextProbe = e.at + int64(10*time.Second) // the probe's deadline
		}
		x.pending = true
		lane := e.lane
		if e.kind == evRefresh {
			lane = sched.Renewal
		}
		if lane == sched.Caller || len(nd.callers) > 0 {
			// A renewal finding callers queued takes its turn among them.
			nd.callers = append(nd.callers, e.sess)
		} else {
			nd.renewals = append(nd.renewals, e.sess)
		}
		s.dispatch(e.node, e.at)
	case evFirstCall:
		if x.exp > e.at {
			// Cached (warm): a hit, once its fetch has landed.
			issued := x.exp - int64(s.p.Life)
			s.res.FirstCall = append(s.res.FirstCall, time.Duration(max(0, issued-e.at)))
			return
		}
		x.waiting = e.at
		switch {
		case x.warmQueued:
			// Still in the warm-up's list: the caller fetches it now.
			x.warmQueued = false
			nd.callers = append(nd.callers, e.sess)
			s.dispatch(e.node, e.at)
		case !x.pending:
			x.pending = true
			nd.callers = append(nd.callers, e.sess)
			s.dispatch(e.node, e.at)
		}
	}
}

// reset empties node n's cache (a restart also forgets who asked and the
// budget) and starts its warm-up.
func (s *sim) reset(n int32, at int64, restart bool) {
	nd := &s.nodes[n]
	nd.gen++
	nd.callers, nd.renewals, nd.warm, nd.inFlight = nd.callers[:0], nd.renewals[:0], nd.warm[:0], 0
	if restart {
		nd.lim = s.newLimiter(at)
	}
	M := s.p.Sessions
	// Every session's client can be seen to hold here, or (after a
	// rollout) asked recently: all are candidates, in file order.
	cands := make([]sched.Candidate, M)
	for j := range cands {
		cands[j].Seen = sched.Holds
		if !restart {
			cands[j].LastAsked = s.time(at)
		}
	}
	picks := sched.WarmOrder(cands, s.p.WarmMax)
	for j := range M {
		id := int32(int(n)*M + j)
		x := &s.ss[id]
		x.gen++
		x.exp, x.pending, x.waiting, x.warmQueued = 0, false, -1, false
		x.failures, x.failedCycle, x.expired = 0, false, false
		if restart {
			first := at + int64(s.rnd.Float64()*float64(s.p.FirstCalls))
			s.schedule(event{at: first, kind: evFirstCall, node: n, sess: id, gen: x.gen})
		}
	}
	warmed := make([]bool, M)
	for _, j := range picks {
		id := int32(int(n)*M + j)
		s.ss[id].warmQueued, s.ss[id].pending = true, true
		nd.warm = append(nd.warm, id)
		warmed[j] = true
	}
	if !restart {
		// Sessions beyond the cap are fetched when their callers next
		// ask: the SDKs hold valid credentials until their own refresh.
		for j := range M {
			if !warmed[j] {
				id := int32(int(n)*M + j)
				s.schedule(event{at: at + int64(s.rnd.Float64()*float64(staleWindow)), kind: evRetry, lane: sched.Caller, node: n, sess: id, gen: s.ss[id].gen})
			}
		}
	}
	s.dispatch(n, at)
}

// dispatch grants node n's budget the way the agent's fair.go does, each
// decision sched.Grant's: queued callers first, then renewals, then the
// warm-up, and arms a wake for when the next grant can hold.
func (s *sim) dispatch(n int32, now int64) {
	nd := &s.nodes[n]
	t := s.time(now)
	for {
		b := sched.Budget{Tokens: nd.lim.TokensAt(t), Burst: nd.lim.Burst(), RenewalsWaiting: len(nd.renewals) > 0}
		var need float64
		switch {
		case len(nd.callers) > 0:
			// The queue's head is served as the agent's dispatch does.
			if sched.Grant(sched.Caller, b) {
				id := nd.callers[0]
				nd.callers = nd.callers[1:]
				s.call(n, id, now, sched.Caller)
				continue
			}
			need = 1 - b.Tokens
		case len(nd.renewals) > 0:
			if sched.Grant(sched.Renewal, b) {
				id := nd.renewals[0]
				nd.renewals = nd.renewals[1:]
				s.call(n, id, now, sched.Renewal)
				continue
			}
			need = 1 + sched.Reserve(b.Burst) - b.Tokens
		case len(nd.warm) > 0 && nd.inFlight < sched.WarmWorkers:
			id := nd.warm[0]
			if !s.ss[id].warmQueued { // a caller took it over
				nd.warm = nd.warm[1:]
				continue
			}
			if sched.Grant(sched.Warm, b) {
				nd.warm = nd.warm[1:]
				s.ss[id].warmQueued = false
				nd.inFlight++
				s.call(n, id, now, sched.Warm)
				s.schedule(event{at: now + int64(s.p.STSLatency), kind: evWarmDone, node: n, gen: nd.gen})
				continue
			}
			need = 1 + sched.Reserve(b.Burst) - b.Tokens
		default:
			return
		}
		at := now + max(int64(need/s.p.MaxQPS*float64(time.Second)), int64(time.Millisecond))
		if nd.wakeAt == 0 || at < nd.wakeAt || nd.wakeAt <= now {
			nd.wakeAt = at
			s.schedule(event{at: at, kind: evWake, node: n})
		}
		return
	}
}

// call spends a token on session id's STS call at now; its outcome lands
// at now+STSLatency.
func (s *sim) call(n, id int32, now int64, lane sched.Lane) {
	nd := &s.nodes[n]
	nd.lim.AllowN(s.time(now), 1)
	if now >= 0 && now < int64(s.p.Day) {
		s.counts[now/int64(time.Second)]++
	}
	x := &s.ss[id]
	done := now + int64(s.p.STSLatency)
	if x.waiting >= 0 {
		s.res.FirstCall = append(s.res.FirstCall, time.Duration(done-x.waiting))
		x.waiting = -1
	}
	if !s.stsDown(now) {
		if x.exp > 0 && !x.failedCycle && done >= 0 {
			left := time.Duration(x.exp - done)
			s.res.MinLeftHealthy = min(s.res.MinLeftHealthy, left)
			if left < staleWindow {
				s.res.Stale++
			}
		}
		x.pending = false
		nd.streak = 0
		s.install(n, id, done)
		return
	}
	// Failed: the agent's backoff (sched.Backoff, by time left). Callers
	// within WaitWindow of expiry ask in the foreground, but the negative
	// cache holds them until that same retry is due: one call either way,
	// in the Caller lane when they are the ones asking.
	x.pending = false
	x.failures++
	x.failedCycle = true
	if x.exp > 0 && done >= x.exp && !x.expired {
		x.expired = true
		s.res.Expired++
	}
	nd.streak++
	nd.nextProbe = s.backoff(n, id, done)
}

// backoff arms session id's retry after a failure (or a skipped probe)
// at now, as the agent's renewLocked does, and returns when it is due.
func (s *sim) backoff(n, id int32, now int64) int64 {
	nd, x := &s.nodes[n], &s.ss[id]
	left := time.Duration(x.exp - now)
	if x.exp == 0 {
		left = 0
	}
	next, lane := now+int64(sched.Backoff(max(x.failures, min(nd.streak, 64)), left, s.rnd.Float64())), sched.Renewal
	if left < sched.WaitWindow {
		lane = sched.Caller
	}
	if left <= 0 {
		// Nothing valid cached: callers retry every error_ttl.
		next = min(next, now+int64(s.p.ErrorTTL))
	}
	s.schedule(event{at: next, kind: evRetry, lane: lane, node: n, sess: id, gen: x.gen})
	return next
}

func (s *sim) finish() {
	var total int64
	peak, peakAfter := 0, 0
	from, to := int(s.p.At/time.Second), int((s.p.At+time.Hour)/time.Second)
	for i, c := range s.counts {
		total += int64(c)
		peak = max(peak, int(c))
		if i >= from && i < to {
			peakAfter = max(peakAfter, int(c))
		}
	}
	var minute int64
	for i := from; i < min(from+60, len(s.counts)); i++ {
		minute += int64(s.counts[i])
	}
	s.res.firstMinute = float64(minute) / 60
	sorted := slices.Clone(s.counts)
	slices.Sort(sorted)
	s.res.Calls = total
	s.res.Mean = float64(total) / float64(len(s.counts))
	s.res.P99 = float64(sorted[min(len(sorted)-1, len(sorted)*99/100)])
	s.res.Peak = peak
	s.res.PeakAfter = peakAfter
	slices.Sort(s.res.FirstCall)
}
