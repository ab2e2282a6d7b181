package agent

import (
	"sync"
)

// warmSignal tells when the latest warm-up has ended (every fetch it
// started returned, successfully or not), for the daemon's readiness
// figure. A reload's warm-up replaces the signal.
type warmSignal struct {
	mu   sync.Mutex
	done chan struct{}
}

// warmRun is one warm-up's signal: its channel closes when it ends.
type warmRun struct {
	once sync.Once
	done chan struct{}
}

// beginWarm starts a new warm-up's signal, held open until the caller's
// matching run.end, called once every fetch of the warm-up has returned.
func (a *Agent) beginWarm() *warmRun {
	run := &warmRun{done: make(chan struct{})}
	a.warmed.mu.Lock()
	a.warmed.done = run.done
	a.warmed.mu.Unlock()
	return run
}

// end marks the warm-up as ended.
func (r *warmRun) end() { r.once.Do(func() { close(r.done) }) }

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
