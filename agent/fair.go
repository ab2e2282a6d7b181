package agent

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/credsidecar/credsidecar/agent/sched"
)

// fairness shares the two scarce things among clients: the STS request
// budget (sts.max_qps) and the cache's entries. One client — say one whose
// session name includes {{.Addr}} and whose CIDR is wide, driven by a user
// with all of 127.0.0.0/8 to connect from — can otherwise queue hundreds of
// misses ahead of everyone and evict everyone's sessions. Here waiting
// misses are granted budget tokens round-robin by client, so a client
// waits behind at most one request of each other client, never behind
// another client's backlog; and a full cache makes room from the client
// holding the most sessions, so nobody's valid sessions are evicted to
// make room for a hog.
type fairness struct {
	mu sync.Mutex
	// queues holds the misses waiting for a token, per client (FIFO);
	// ring is the clients with waiters, in the order they are served.
	queues map[string][]*budgetWaiter
	ring   []string
	turn   int
	armed  bool // a dispatch is scheduled on the agent's clock
	// renewalsWaiting counts background renewals sleeping for tokens:
	// warm-up fetches let them go first.
	renewalsWaiting int
	// held counts cached sessions per client.
	held map[string]int
	// room serializes cache insertions (makeRoom + Add).
	room sync.Mutex
	// streak counts the source's consecutive retryable failures, across
	// sessions (see noteOutcome).
	streak atomic.Int64
	// nextProbe is when a background renewal may next try a failing
	// source (see probeDue).
	nextProbe time.Time
}

type budgetWaiter struct {
	ch      chan struct{}
	granted bool
}

// waitBudget takes one token of the STS budget, on the agent's clock, in
// lane's turn (sched.Grant decides). A caller (a miss) takes a token at
// once when nobody is queued, else queues for its client's turn. A
// background renewal spends freely only while nobody is queued and at
// least half the burst is left, so renewals never starve callers' misses;
// when misses are queued it queues for its own client's turn like one, so
// one client's backlog of misses cannot starve every other client's
// renewals either (their sessions would run into the SDKs' stale window).
// A warm-up fetch never queues: it takes only tokens that no caller and
// no renewal is waiting for.
func (a *Agent) waitBudget(ctx context.Context, client string, lane sched.Lane) error {
	switch lane {
	case sched.Renewal:
		if queued, err := a.waitBackground(ctx, lane); !queued {
			return err
		}
	case sched.Warm:
		for {
			queued, err := a.waitBackground(ctx, lane)
			if !queued {
				return err
			}
			// Callers are queued: wait a token's time and look again,
			// never taking a token one of them could have.
			lim := a.budget.Load()
			if err := a.sleep(ctx, tokenTime(lim)); err != nil {
				return err
			}
		}
	}
	f := &a.fair
	f.mu.Lock()
	lim := a.budget.Load()
	now := a.clk.Now()
	if sched.Grant(sched.Caller, sched.Budget{Tokens: lim.TokensAt(now), Burst: lim.Burst(), CallersQueued: len(f.ring) > 0}) {
		lim.AllowN(now, 1)
		f.mu.Unlock()
		return nil
	}
	if lim.Limit() <= 0 {
		f.mu.Unlock()
		return errors.New("sts.max_qps allows no request at all")
	}
	w := &budgetWaiter{ch: make(chan struct{})}
	if f.queues == nil {
		f.queues = map[string][]*budgetWaiter{}
	}
	if len(f.queues[client]) == 0 {
		f.ring = append(f.ring, client)
	}
	f.queues[client] = append(f.queues[client], w)
	a.armDispatchLocked(now)
	f.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		defer f.mu.Unlock()
		if w.granted {
			return nil // granted as the context ended: use it
		}
		f.dropLocked(client, w)
		return ctx.Err()
	}
}

// tokenTime is how long the budget takes to make one token (at least a
// millisecond, so a wait loop always advances the clock).
func tokenTime(lim *rate.Limiter) time.Duration {
	if lim.Limit() <= 0 {
		return time.Second
	}
	return max(time.Duration(float64(time.Second)/float64(lim.Limit())), time.Millisecond)
}

// armDispatchLocked schedules a dispatch for when the next token is there.
func (a *Agent) armDispatchLocked(now time.Time) {
	f := &a.fair
	if f.armed || len(f.ring) == 0 {
		return
	}
	lim := a.budget.Load()
	d := time.Duration(0)
	if tok := lim.TokensAt(now); tok < 1 {
		d = time.Duration((1 - tok) / float64(lim.Limit()) * float64(time.Second))
	}
	f.armed = true
	a.clk.AfterFunc(max(d, time.Millisecond), a.dispatch)
}

// dispatch grants the tokens that are there, one per client in turn.
func (a *Agent) dispatch() {
	f := &a.fair
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	lim := a.budget.Load()
	now := a.clk.Now()
	for len(f.ring) > 0 && lim.TokensAt(now) >= 1 {
		f.turn %= len(f.ring)
		client := f.ring[f.turn]
		q := f.queues[client]
		w := q[0]
		f.queues[client] = q[1:]
		lim.AllowN(now, 1)
		w.granted = true
		close(w.ch)
		if len(f.queues[client]) == 0 {
			delete(f.queues, client)
			f.ring = append(f.ring[:f.turn], f.ring[f.turn+1:]...)
		} else {
			f.turn++
		}
	}
	a.armDispatchLocked(now)
}

// dropLocked removes a waiter whose caller gave up.
func (f *fairness) dropLocked(client string, w *budgetWaiter) {
	q := f.queues[client]
	for i, x := range q {
		if x == w {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) > 0 {
		f.queues[client] = q
		return
	}
	delete(f.queues, client)
	for i, c := range f.ring {
		if c == client {
			f.ring = append(f.ring[:i], f.ring[i+1:]...)
			if f.turn > i {
				f.turn--
			}
			break
		}
	}
}

// waitBackground is a renewal's or a warm-up fetch's wait while nobody
// is queued: it keeps half the burst for misses, and a warm-up fetch also
// lets waiting renewals go first. It reports queued when misses are
// waiting: a renewal should then take its client's turn among them, a
// warm-up fetch wait for them to be served.
func (a *Agent) waitBackground(ctx context.Context, lane sched.Lane) (queued bool, err error) {
	f := &a.fair
	for {
		lim := a.budget.Load()
		f.mu.Lock()
		now := a.clk.Now()
		b := sched.Budget{Tokens: lim.TokensAt(now), Burst: lim.Burst(), CallersQueued: len(f.ring) > 0, RenewalsWaiting: f.renewalsWaiting > 0}
		if b.CallersQueued {
			f.mu.Unlock()
			return true, nil
		}
		if sched.Grant(lane, b) {
			lim.AllowN(now, 1)
			f.mu.Unlock()
			return false, nil
		}
		if lane == sched.Renewal {
			f.renewalsWaiting++
		}
		f.mu.Unlock()
		if lim.Limit() <= 0 {
			a.doneWaiting(lane)
			return false, errors.New("sts.max_qps allows no request at all")
		}
		wait := sched.Wait(b, float64(lim.Limit()))
		if lane == sched.Warm && b.RenewalsWaiting {
			wait = max(wait, tokenTime(lim))
		}
		err := a.sleep(ctx, max(wait, time.Millisecond))
		a.doneWaiting(lane)
		if err != nil {
			return false, err
		}
	}
}

// doneWaiting ends a renewal's turn in the count warm-up fetches yield to.
func (a *Agent) doneWaiting(lane sched.Lane) {
	if lane != sched.Renewal {
		return
	}
	a.fair.mu.Lock()
	a.fair.renewalsWaiting--
	a.fair.mu.Unlock()
}

// makeRoom evicts one session when the cache is full and client is about
// to add one: the least recently used session of the client holding the
// most (client itself on a tie), so a client filling the cache evicts its
// own sessions, never another's.
func (a *Agent) makeRoom(client string, limit int) {
	if a.lru.Len() < limit {
		return
	}
	f := &a.fair
	f.mu.Lock()
	victim, most := client, f.held[client]
	for c, n := range f.held {
		if n > most {
			victim, most = c, n
		}
	}
	f.mu.Unlock()
	for _, k := range a.lru.Keys() { // oldest first
		if e, ok := a.lru.Peek(k); ok && e.client == victim {
			a.lru.Remove(k)
			return
		}
	}
}

// count and uncount add e to and remove it from its client's count, once.
func (a *Agent) count(e *entry) {
	if e.counted.CompareAndSwap(false, true) {
		a.holdDelta(e.client, 1)
	}
}

func (a *Agent) uncount(e *entry) {
	if e.counted.CompareAndSwap(true, false) {
		a.holdDelta(e.client, -1)
	}
}

// holdDelta adjusts the per-client count of cached sessions.
func (a *Agent) holdDelta(client string, d int) {
	f := &a.fair
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held == nil {
		f.held = map[string]int{}
	}
	if f.held[client] += d; f.held[client] <= 0 {
		delete(f.held, client)
	}
}
