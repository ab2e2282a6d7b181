package agent

import (
	"sync"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// dueKind is what runs when a cached session's deadline comes.
type dueKind uint8

const (
	// dueRefresh: the session's refresh point (onRefreshDue).
	dueRefresh dueKind = iota + 1
	// dueExpire: a retired session's expiry: it leaves the cache.
	dueExpire
	// dueRetry: a failed renewal's backoff is over (retryDue).
	dueRetry
)

// dueQueue is the agent's one timer for every cached session's next
// deadline (refresh point, expiry of a retired session, retry after a
// failed renewal): a min-heap of entries ordered by deadline, then by the
// order they were armed in, with one clock timer armed for the earliest.
// A timer per session cost about 150 bytes each (the runtime's timer and
// its closure); an entry's place in the heap costs a few fields and a
// slot. Due entries run as each timer of their own did: each in its own
// clock callback (clock.AfterFunc(0)), so one slow renewal never holds up
// another and a fake clock still runs them in deadline order, inside
// Advance.
type dueQueue struct {
	clk clock.Clock
	run func(e *entry, kind dueKind, failedAt int64)

	mu   sync.Mutex
	heap []*entry
	seq  uint64
	// timer is armed for timerAt (unix ns) while the heap is not empty;
	// it may be armed earlier than the earliest deadline (after a
	// removal), and then only re-arms when it fires.
	timer   clock.Timer
	timerAt int64
	// gen numbers the timers armed: a timer that fired while being
	// replaced (a real clock's Stop can lose that race) must not forget
	// its successor.
	gen uint64
}

// dueLen returns how many entries have a deadline armed.
func (q *dueQueue) dueLen() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.heap)
}

// arm sets e's one deadline to now+d (replacing any other), with what runs
// then and, for dueRetry, when the renewal failed. It reports whether the
// deadline it replaced was a retry that had not started (armed, or handed
// to run and not yet run): that retry will never run.
func (q *dueQueue) arm(e *entry, d time.Duration, kind dueKind, failedAt int64) (replacedRetry bool) {
	at := q.clk.Now().Add(max(d, 0)).UnixNano()
	q.mu.Lock()
	defer q.mu.Unlock()
	replacedRetry = e.dueSeq != 0 && e.dueKind == dueRetry
	q.seq++
	e.dueAt, e.dueSeq, e.dueKind, e.failedAt = at, q.seq, kind, failedAt
	if e.dueIdx > 0 {
		q.fix(int(e.dueIdx) - 1)
	} else {
		q.heap = append(q.heap, e)
		e.dueIdx = int32(len(q.heap))
		q.up(len(q.heap) - 1)
	}
	q.armTimerLocked()
	return replacedRetry
}

// cancel removes e's deadline, if any.
func (q *dueQueue) cancel(e *entry) {
	q.mu.Lock()
	defer q.mu.Unlock()
	// A deadline already handed to run (due, not yet run) is cancelled
	// too: run skips it (stillDue).
	e.dueSeq = 0
	if e.dueIdx == 0 {
		return
	}
	i := int(e.dueIdx) - 1
	last := len(q.heap) - 1
	q.swap(i, last)
	q.heap[last] = nil
	q.heap = q.heap[:last]
	e.dueIdx = 0
	if i < last {
		q.fix(i)
	}
	if len(q.heap) == 0 && q.timer != nil {
		// Nothing left to wake for: a stopped agent leaves no timer.
		q.timer.Stop()
		q.timer, q.timerAt = nil, 0
		q.gen++
	}
}

// armTimerLocked makes sure the timer fires no later than the earliest
// deadline.
func (q *dueQueue) armTimerLocked() {
	if len(q.heap) == 0 {
		return
	}
	first := q.heap[0].dueAt
	if q.timer != nil && q.timerAt <= first {
		return
	}
	if q.timer != nil {
		q.timer.Stop()
	}
	q.gen++
	gen := q.gen
	q.timerAt = first
	q.timer = q.clk.AfterFunc(time.Duration(first-q.clk.Now().UnixNano()), func() { q.fire(gen) })
}

// fire hands every entry whose deadline has come to run, each in a clock
// callback of its own, and re-arms the timer for the next deadline.
func (q *dueQueue) fire(gen uint64) {
	now := q.clk.Now().UnixNano()
	q.mu.Lock()
	if gen == q.gen {
		q.timer, q.timerAt = nil, 0
	}
	var due []*entry
	for len(q.heap) > 0 && q.heap[0].dueAt <= now {
		e := q.heap[0]
		last := len(q.heap) - 1
		q.swap(0, last)
		q.heap[last] = nil
		q.heap = q.heap[:last]
		e.dueIdx = 0
		q.down(0)
		due = append(due, e)
	}
	// Read under the lock: a re-arm after the pop changes them.
	type popped struct {
		e        *entry
		seq      uint64
		kind     dueKind
		failedAt int64
	}
	runs := make([]popped, len(due))
	for i, e := range due {
		runs[i] = popped{e, e.dueSeq, e.dueKind, e.failedAt}
	}
	q.armTimerLocked()
	q.mu.Unlock()
	for _, p := range runs {
		q.clk.AfterFunc(0, func() {
			if q.stillDue(p.e, p.seq) {
				q.run(p.e, p.kind, p.failedAt)
			}
		})
	}
}

// stillDue reports whether the deadline armed as seq, handed to run, was
// neither re-armed nor cancelled since: as a stopped timer of its own
// would not, a replaced deadline does not run. A deadline it lets run is
// spent (dueSeq 0): arm no longer counts it as one that will not run.
func (q *dueQueue) stillDue(e *entry, seq uint64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if e.dueIdx != 0 || e.dueSeq != seq {
		return false
	}
	e.dueSeq = 0
	return true
}

func (q *dueQueue) less(i, j int) bool {
	a, b := q.heap[i], q.heap[j]
	return a.dueAt < b.dueAt || (a.dueAt == b.dueAt && a.dueSeq < b.dueSeq)
}

func (q *dueQueue) swap(i, j int) {
	q.heap[i], q.heap[j] = q.heap[j], q.heap[i]
	q.heap[i].dueIdx = int32(i + 1)
	q.heap[j].dueIdx = int32(j + 1)
}

func (q *dueQueue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q.less(i, p) {
			return
		}
		q.swap(i, p)
		i = p
	}
}

func (q *dueQueue) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(q.heap) {
			return
		}
		m := l
		if r := l + 1; r < len(q.heap) && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			return
		}
		q.swap(i, m)
		i = m
	}
}

// fix restores the heap after the deadline at i changed.
func (q *dueQueue) fix(i int) {
	q.up(i)
	q.down(i)
}
