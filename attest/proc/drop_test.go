//go:build linux

package proc

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// TestScansNotStartedInTimeAreDropped: lookups of many uids while every
// slot is taken give up after the wait, and so do their scans: none is
// left queued to run for nobody once the slots free up (a flood of uids
// would otherwise leave a backlog of goroutines and scans behind it).
func TestScansNotStartedInTimeAreDropped(t *testing.T) {
	a, _, err := New(Options{Wait: 50 * time.Millisecond, SubUIDFile: "-"})
	if err != nil {
		t.Fatal(err)
	}
	for range cap(a.sem) {
		a.sem <- struct{}{} // every user slot taken
	}
	var wg sync.WaitGroup
	for uid := uint32(200000); uid < 200050; uid++ {
		wg.Go(func() {
			if _, err := a.holders(uid, 1); !errors.Is(err, ErrBusy) {
				t.Errorf("uid %d: %v, want busy", uid, err)
			}
		})
	}
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		a.mu.Lock()
		pending, turns := len(a.pending), len(a.turns)
		a.mu.Unlock()
		if pending == 0 && turns == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d scans still pending, %d turns held, after their lookups gave up", pending, turns)
		}
	}
	// No turn is held: no scan goroutine is left to start once the slots
	// free up (each holds its owner's turn from start to end).
	if n := a.Scans.Load(); n != 0 {
		t.Errorf("%d scans ran with every slot taken", n)
	}
}
