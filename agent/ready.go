package agent

import (
	"sync"
	"sync/atomic"
)

// warmSignal tells when the latest warm-up has ended (every fetch it
// started returned, successfully or not), for the daemon's readiness
// figure. A reload's warm-up replaces the signal.
type warmSignal struct {
	mu   sync.Mutex
	done chan struct{}
}

// warmRun counts one warm-up's fetches in flight; the last to end closes
// its channel.
type warmRun struct {
	pending atomic.Int64
	done    chan struct{}
}

// beginWarm starts a new warm-up's signal, held open until the caller's
// matching run.end (called once every fetch has returned; run.add counts
// fetches that end on their own).
func (a *Agent) beginWarm() *warmRun {
	run := &warmRun{done: make(chan struct{})}
	run.pending.Add(1) // held until started: no early close
	a.warmed.mu.Lock()
	a.warmed.done = run.done
	a.warmed.mu.Unlock()
	return run
}

func (r *warmRun) add() { r.pending.Add(1) }

// end marks one fetch (or, once, the starting itself) as ended.
func (r *warmRun) end() {
	if r.pending.Add(-1) == 0 {
		close(r.done)
	}
}

// Warmed returns a channel closed once the latest warm-up (at start or
// after a reload) has ended; with the warm-up off it is closed already.
func (a *Agent) Warmed() <-chan struct{} {
	a.warmed.mu.Lock()
	defer a.warmed.mu.Unlock()
	if a.warmed.done == nil {
		c := make(chan struct{})
		close(c)
		return c
	}
	return a.warmed.done
}
