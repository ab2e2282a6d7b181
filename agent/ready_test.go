package agent

import (
	"fmt"
	"testing"
	"testing/synctest"

	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// TestWarmed: Warmed is closed only once every warm-up fetch has returned,
// and a reload's warm-up gives a new, open signal.
func TestWarmed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := clock.NewFake(t0)
		src := newFakeSource(clk)
		src.block = make(chan struct{})
		cfg := parseConfig(t, fmt.Sprintf(testYAML, 100))
		a, err := New(Options{Source: src, Clock: clk, Logger: zaptest.NewLogger(t)}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		synctest.Wait()
		select {
		case <-a.Warmed():
			t.Fatal("warmed while the warm-up's fetches are held")
		default:
		}
		close(src.block)
		synctest.Wait()
		select {
		case <-a.Warmed():
		default:
			t.Fatal("not warmed once every fetch returned")
		}
		if a.Len() < 3 {
			t.Fatalf("%d sessions cached after the warm-up", a.Len())
		}
		// A reload whose sessions are all cached starts no fetch: warmed
		// as soon as its warm-up has looked (source.block is closed, so a
		// fetch would not hold it; the source's calls show none was made —
		// a fetch of a cached session would leave the cache size as it is).
		n, calls := a.Len(), src.calls.Load()
		a.Apply(cfg)
		synctest.Wait()
		if a.Len() != n {
			t.Fatalf("the reload's warm-up fetched: %d sessions, was %d", a.Len(), n)
		}
		if c := src.calls.Load(); c != calls {
			t.Fatalf("the reload's warm-up called the source %d times", c-calls)
		}
		select {
		case <-a.Warmed():
		default:
			t.Fatal("a warm-up with nothing to fetch is not warmed")
		}
	})
}

// TestWarmedOff: with the warm-up off, Warmed is closed from the start.
func TestWarmedOff(t *testing.T) {
	f := newFixture(t, 10)
	select {
	case <-f.a.Warmed():
	default:
		t.Fatal("warm-up off, yet not warmed")
	}
}
