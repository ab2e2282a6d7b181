package agent

import (
	"context"
	"sync"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// clockDeadline is context.WithTimeout on the agent's clock: a source call's
// deadline is time like every other the agent keeps (refresh points, the
// STS budget, backoff), so a fake clock governs all of them together and
// tests do not mix two clocks. Err reports context.DeadlineExceeded once
// the clock reaches the deadline, as context.WithTimeout does.
type clockDeadline struct {
	context.Context // the parent, for Value
	deadline        time.Time
	done            chan struct{}
	once            sync.Once
	mu              sync.Mutex
	err             error
	timer           clock.Timer
	stop            func() bool
}

func withClockTimeout(parent context.Context, clk clock.Clock, d time.Duration) (context.Context, context.CancelFunc) {
	c := &clockDeadline{Context: parent, deadline: clk.Now().Add(d), done: make(chan struct{})}
	// Either callback may run before both are registered (an ended
	// parent's runs at once): end reads them under the same lock.
	c.mu.Lock()
	c.timer = clk.AfterFunc(d, func() { c.end(context.DeadlineExceeded) })
	c.stop = context.AfterFunc(parent, func() { c.end(parent.Err()) })
	c.mu.Unlock()
	return c, func() { c.end(context.Canceled) }
}

func (c *clockDeadline) end(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		timer, stop := c.timer, c.stop
		c.mu.Unlock()
		timer.Stop()
		stop()
		close(c.done)
	})
}

func (c *clockDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *clockDeadline) Done() <-chan struct{} { return c.done }

func (c *clockDeadline) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
