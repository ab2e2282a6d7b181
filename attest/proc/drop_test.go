//go:build linux

package proc

import (
	"errors"
	"os"
	"path/filepath"
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

// TestOneOwnersWaitingScansAreBounded: a user's uids (its subordinate
// range) have at most maxQueuedPerOwner scans waiting to start; past that
// its lookups fail busy at once, without a goroutine each, while another
// user's lookup still gets a scan of its own.
func TestOneOwnersWaitingScansAreBounded(t *testing.T) {
	subuid := filepath.Join(t.TempDir(), "subuid")
	os.WriteFile(subuid, []byte("7000:300000:65536\n"), 0o644)
	// The wait is long enough that no queued scan is dropped (making room
	// in the bound) before every lookup of the flood has been made.
	a, _, err := New(Options{Wait: 2 * time.Second, SubUIDFile: subuid})
	if err != nil {
		t.Fatal(err)
	}
	for range cap(a.sem) {
		a.sem <- struct{}{} // every user slot taken: nothing starts
	}
	const flood = 3 * maxQueuedPerOwner
	errs := make(chan error, flood)
	for i := range flood {
		go func() {
			_, err := a.holders(uint32(300000+i), 1)
			errs <- err
		}()
	}
	full, other := 0, false
	for range flood {
		if err := <-errs; errors.Is(err, errOwnerQueueFull) {
			full++
		} else if !errors.Is(err, ErrBusy) {
			t.Errorf("a flooding uid's lookup: %v, want busy", err)
		}
		if full == flood-maxQueuedPerOwner && !other {
			// The rest are the queued ones: another user is not refused
			// for the flood's bound (its scan waits, and times out: the
			// slots are taken).
			other = true
			if _, err := a.holders(8000, 1); !errors.Is(err, ErrBusy) || errors.Is(err, errOwnerQueueFull) {
				t.Errorf("another user's lookup: %v, want a scan of its own that could not start", err)
			}
		}
	}
	if full != flood-maxQueuedPerOwner {
		t.Errorf("%d of %d lookups refused at once, want %d", full, flood, flood-maxQueuedPerOwner)
	}
}
