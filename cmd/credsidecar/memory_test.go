package main

import (
	"runtime/metrics"
	"slices"
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

// goalAt is the runtime's heap goal at GOGC p (runtime/mgcpacer.go).
func goalAt(live, roots uint64, p int) uint64 {
	return max(gcMinHeap*uint64(p)/100, live+(live+roots)*uint64(p)/100)
}

func TestGCPercentKeepsHeadroom(t *testing.T) {
	const roots = 370 << 10 // stacks and globals, as on the demo config
	for live := uint64(0); live <= 40*mib; live += 64 << 10 {
		p := gcPercent(live, roots)
		if p < 100 || p > gcPercentMax {
			t.Fatalf("live %d: GOGC %d outside [100, %d]", live, p, gcPercentMax)
		}
		goal := goalAt(live, roots, p)
		if goal < live+gcHeadroom {
			t.Errorf("live %.2f MiB: GOGC %d gives goal %.2f MiB, under live + headroom", float64(live)/mib, p, float64(goal)/mib)
		}
		// The smallest such GOGC: one less would miss the headroom,
		// unless it is the runtime's default.
		if p > 100 && goalAt(live, roots, p-1) >= live+gcHeadroom {
			t.Errorf("live %.2f MiB: GOGC %d is not the least that keeps the headroom", float64(live)/mib, p)
		}
		if extra := goal - goalAt(live, roots, 100); extra > 3*mib/2 {
			t.Errorf("live %.2f MiB: the raised goal costs %.2f MiB over GOGC=100", float64(live)/mib, float64(extra)/mib)
		}
	}
	// The demo config's heap (~1.3 MiB live) collects at ~4.8 MiB, a large
	// one (10 000 sessions) at twice its live heap, as GOGC=100.
	if p := gcPercent(1300<<10, roots); p < 115 || p > 125 {
		t.Errorf("demo heap: GOGC %d, want about 120", p)
	}
	if p := gcPercent(25*mib, roots); p != 100 {
		t.Errorf("large heap: GOGC %d, want 100", p)
	}
}

func TestGCTuner(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "GOGC" {
				return v
			}
			return ""
		}
	}
	if newGCTuner(env("150"), func(int) int { t.Fatal("set with GOGC given"); return 0 }) != nil {
		t.Fatal("a tuner despite the operator's GOGC")
	}
	var set []int
	tu := newGCTuner(env(""), func(p int) int { set = append(set, p); return 0 })
	const roots = 370 << 10
	steps := []struct {
		live uint64
		want []int
	}{
		{0, nil},                 // no collection yet
		{300 << 10, nil},         // small heap: GOGC=100 holds
		{1300 << 10, []int{120}}, // the demo config's heap
		{1310 << 10, []int{120}}, // moved less than a step
		{1800 << 10, []int{120, 132}},
		{25 * mib, []int{120, 132, 100}}, // a large heap: back to 100
		{25 * mib, []int{120, 132, 100}},
	}
	for _, st := range steps {
		tu.tune(heapSample{live: st.live, roots: roots})
		if !slices.Equal(set, st.want) {
			t.Fatalf("after live %d: set %v, want %v", st.live, set, st.want)
		}
	}
}
