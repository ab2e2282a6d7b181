// Package clock abstracts time so that every expiry and timer computation in
// credsidecar can be driven by a fake clock in tests.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock is the source of time and timers used by the agent and the issuer.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the subset of *time.Timer that callers need.
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

// Real is the wall clock.
type Real struct{}

// Now returns the wall-clock time without its monotonic reading: expiry
// times come from STS as wall-clock instants, and the monotonic clock stops
// while a laptop sleeps, so comparing with it could call expired
// credentials fresh after a wake-up.
func (Real) Now() time.Time { return time.Now().Round(0) }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Fake is a manually advanced clock for deterministic tests. Timers fire
// synchronously, in deadline order, inside Advance/Set.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	seq    int
}

// NewFake returns a fake clock set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

type fakeTimer struct {
	c       *Fake
	at      time.Time
	seq     int
	fn      func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.stopped {
		return false
	}
	t.stopped = true
	for i, x := range t.c.timers {
		if x == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			break
		}
	}
	return true
}

// AfterFunc registers f to run when the fake time reaches now+d.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	t := &fakeTimer{c: f, at: f.now.Add(d), seq: f.seq, fn: fn}
	f.timers = append(f.timers, t)
	return t
}

// Advance moves the clock forward by d, running due timers in order.
func (f *Fake) Advance(d time.Duration) { f.Set(f.Now().Add(d)) }

// Set moves the clock to t (never backwards), running due timers in order.
// Each timer runs synchronously with the clock set to its deadline, so a
// timer callback observes the time it was scheduled for.
func (f *Fake) Set(t time.Time) { f.set(t, nil) }

// AdvanceSettling is Advance that calls settle after each timer it fires,
// before the clock moves on: with settle = synctest.Wait, work a timer
// started in the background (a renewal) finishes at the time it was due,
// as it would on a real clock, instead of racing the clock's jump.
func (f *Fake) AdvanceSettling(d time.Duration, settle func()) {
	f.set(f.Now().Add(d), settle)
}

func (f *Fake) set(t time.Time, settle func()) {
	for {
		f.mu.Lock()
		sort.Slice(f.timers, func(i, j int) bool {
			if f.timers[i].at.Equal(f.timers[j].at) {
				return f.timers[i].seq < f.timers[j].seq
			}
			return f.timers[i].at.Before(f.timers[j].at)
		})
		if len(f.timers) == 0 || f.timers[0].at.After(t) {
			if t.After(f.now) {
				f.now = t
			}
			f.mu.Unlock()
			return
		}
		next := f.timers[0]
		f.timers = f.timers[1:]
		next.stopped = true
		if next.at.After(f.now) {
			f.now = next.at
		}
		f.mu.Unlock()
		next.fn()
		if settle != nil {
			settle()
		}
	}
}

// Pending returns how many timers are armed.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}
