package agent

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// BenchmarkCachedHit is the agent's share of the hot path: trust decision,
// session key, cache read.
func BenchmarkCachedHit(b *testing.B) {
	for _, tc := range []struct {
		name   string
		caller *Caller
		role   string
	}{
		{"token", alice, "app"},
		{"address", addrCaller("127.0.0.1"), "short"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f := newBenchFixture(b, 100)
			ctx := context.Background()
			if _, err := f.a.Credentials(ctx, tc.caller, tc.role); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := f.a.Credentials(ctx, tc.caller, tc.role); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

func newBenchFixture(b *testing.B, max int) *fixture {
	clk := clock.NewFake(t0)
	src := newFakeSource(clk)
	a, err := New(Options{Source: src, Clock: clk, Logger: zap.NewNop(), DisableWarm: true}, parseConfig(b, fmt.Sprintf(testYAML, max)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(a.Close)
	return &fixture{clk: clk, src: src, a: a}
}

// BenchmarkColdCallers: 1000 concurrent callers of one cold session make
// one source call (reported as source-calls/op; it must be 1).
func BenchmarkColdCallers(b *testing.B) {
	var calls int64
	for range b.N {
		b.StopTimer()
		f := newBenchFixture(b, 100)
		release := make(chan struct{})
		f.src.block = release
		var wg sync.WaitGroup
		b.StartTimer()
		for range 1000 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f.a.Credentials(context.Background(), alice, "app")
			}()
		}
		for f.src.calls.Load() == 0 {
			runtime.Gosched()
		}
		time.Sleep(10 * time.Millisecond)
		close(release)
		wg.Wait()
		calls += f.src.calls.Load()
	}
	b.ReportMetric(float64(calls)/float64(b.N), "source-calls/op")
	if calls != int64(b.N) {
		b.Fatalf("%d source calls for %d rounds of 1000 cold callers", calls, b.N)
	}
}
