package main

import (
	"runtime/metrics"
	"testing"
)

const mib = 1 << 20

func TestShouldTrim(t *testing.T) {
	quiet := heapSample{allocs: 100 * mib}
	for _, tc := range []struct {
		name string
		prev heapSample
		cur  heapSample
		want bool
	}{
		{"quiet after a burst", quiet, heapSample{allocs: 100*mib + 1000, live: 24 * mib, held: 46 * mib}, true},
		{"busy: the cached path pays no collection", quiet, heapSample{allocs: 101 * mib, live: 24 * mib, held: 46 * mib}, false},
		{"trimmed already", quiet, heapSample{allocs: 100 * mib, live: 24 * mib, held: 25 * mib}, false},
		{"small heap: the demo config's garbage is under trimMin", quiet, heapSample{allocs: 100 * mib, live: 3 * mib, held: 9 * mib}, false},
		{"large heap, little garbage: under a quarter of live", quiet, heapSample{allocs: 100 * mib, live: 80 * mib, held: 95 * mib}, false},
		{"large heap, a quarter of live in garbage", quiet, heapSample{allocs: 100 * mib, live: 80 * mib, held: 101 * mib}, true},
		{"held under live (metrics of different moments)", quiet, heapSample{allocs: 100 * mib, live: 24 * mib, held: 20 * mib}, false},
	} {
		if got := shouldTrim(tc.prev, tc.cur); got != tc.want {
			t.Errorf("%s: shouldTrim = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The metrics the trim reads exist in this runtime (a renamed one would
// read as zero and the trim would never run).
func TestTrimMetricsExist(t *testing.T) {
	known := map[string]bool{}
	for _, d := range metrics.All() {
		known[d.Name] = d.Kind == metrics.KindUint64
	}
	for _, name := range trimMetrics {
		if !known[name] {
			t.Errorf("runtime/metrics has no uint64 %s", name)
		}
	}
}
