package main

import (
	"context"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/config"
)

// largeConfig is the number of clients from which loading a config leaves
// megabytes of garbage (the YAML tree, the validator's maps: about 3 KiB
// per client, against under 1 KiB kept).
const largeConfig = 1000

// releaseLoadGarbage returns the memory a large config's load used and no
// longer needs to the system at once. The runtime would keep it mapped for
// minutes (its scavenger returns idle pages slowly), so a node whose config
// lists 10 000 clients would hold two to three times its live heap after
// every start and reload. A small config's load leaves too little to be
// worth the collection this forces.
func releaseLoadGarbage(cfg *config.Config) {
	if len(cfg.Clients) >= largeConfig {
		debug.FreeOSMemory()
	}
}

// Idle trim: once the daemon goes quiet after a burst of work (a warm-up,
// a wave of first calls filling thousands of sessions), it collects and
// hands the burst's garbage back to the system at once. GOGC=100 lets
// the heap grow to twice what is live before collecting, and the runtime
// returns freed pages over minutes: a node at rest would hold twice its
// sessions' memory for nothing. Under load nothing changes (the trim waits
// for quiet, so the cached path pays no extra collection), and a small
// heap (the demo config's few MiB) never has enough garbage to trim.
const (
	// trimEvery is how often the heap is looked at: one runtime/metrics
	// read, microseconds. A burst's garbage is handed back within two
	// looks of its end.
	trimEvery = 250 * time.Millisecond
	// trimQuiet: allocating less than this in one trimEvery is quiet (1
	// MiB/s: a few hundred requests a second).
	trimQuiet = 256 << 10
	// trimMin is the least garbage worth a trim.
	trimMin = 8 << 20
)

// heapSample is what one look at the heap reads (bytes).
type heapSample struct {
	// allocs is the total ever allocated.
	allocs uint64
	// live is the heap marked live by the last collection.
	live uint64
	// held is the heap's objects (live or not yet collected) plus its
	// free pages not returned to the system: what a collection and a
	// scavenge could bring down to live. Fragmentation (unused slots of
	// spans in use) is not in it: a trim cannot return it.
	held uint64
	// roots is the stacks and globals the last collection scanned.
	roots uint64
}

// shouldTrim reports whether to collect and return memory now, given the
// previous look and this one: quiet since the previous look, and holding
// at least trimMin and a quarter of the live heap more than is live.
func shouldTrim(prev, cur heapSample) bool {
	if cur.allocs-prev.allocs >= trimQuiet || cur.held <= cur.live {
		return false
	}
	extra := cur.held - cur.live
	return extra >= trimMin && extra >= cur.live/4
}

var trimMetrics = []string{
	"/gc/heap/allocs:bytes",
	"/gc/heap/live:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/free:bytes",
	"/gc/scan/stack:bytes",
	"/gc/scan/globals:bytes",
}

// Headroom floor. The runtime collects when the heap reaches its goal:
// twice what the last collection found live (GOGC=100), but never below
// 4 MiB. That floor is meant for small programs; the daemon's libraries
// keep about 0.6 MiB live from their package init alone (the AWS SDK's
// endpoint and schema tables, prometheus), tables that never die, and its
// live heap is 1.1-1.3 MiB on the demo config against a bare net/http
// server's 0.6. A fixed 4 MiB goal leaves the sidecar's requests a quarter
// less room to allocate in than the bare server gets, so it collects that
// much more often for the same work (measured on cold SDK sequences: 3.6
// collections per thousand against 2.8 with the floor and the bare
// server's 2.55; a collection costs ~1.5 ms of CPU here). So, while the
// heap is small, the goal is raised to keep gcHeadroom above what is live
// — the room the bare server has — and once the live heap is large enough
// that doubling gives that room, GOGC=100 applies unchanged: the extra
// memory is bounded (at most ~1.3 MiB, near 1.8 MiB live) and a large heap
// (10 000 sessions) is never made larger. An operator's GOGC is left
// alone.
const (
	// gcHeadroom is the least room between the live heap and the goal:
	// what a bare server's 4 MiB goal leaves above its ~0.6 MiB live.
	gcHeadroom = 3<<20 + 512<<10
	// gcMinHeap is the runtime's heap goal floor at GOGC=100
	// (runtime/mgcpacer.go, defaultHeapMinimum).
	gcMinHeap = 4 << 20
	// gcPercentMax bounds the raised GOGC (it is ~120 on the demo
	// config; the bound only guards against a nonsense sample).
	gcPercentMax = 200
)

// gcPercent returns the GOGC that makes the runtime's heap goal at least
// live + gcHeadroom, and 100 where GOGC=100 already does. The goal at GOGC
// p is max(gcMinHeap·p/100, live + (live+roots)·p/100), roots being the
// stacks and globals the last collection scanned (runtime/mgcpacer.go,
// heapGoalInternal): the smallest p meeting the want is the smaller of
// the p that raises either term to it.
func gcPercent(live, roots uint64) int {
	want := float64(live + gcHeadroom)
	if want <= gcMinHeap || live+roots >= gcHeadroom {
		return 100
	}
	p := min(100*want/gcMinHeap, 100*float64(gcHeadroom)/float64(live+roots))
	return min(max(int(math.Ceil(p)), 100), gcPercentMax)
}

// gcTuner sets GOGC to gcPercent of the last collection's figures,
// changing it only when it moves by gcPercentStep or more (the live heap
// moves a little from one collection to the next).
type gcTuner struct {
	set     func(int) int // debug.SetGCPercent
	current int
}

// gcPercentStep is the least change of the tuned GOGC worth applying.
const gcPercentStep = 2

// newGCTuner returns a tuner, or nil when the operator set GOGC.
func newGCTuner(getenv func(string) string, set func(int) int) *gcTuner {
	if getenv("GOGC") != "" {
		return nil
	}
	return &gcTuner{set: set, current: 100}
}

// tune applies gcPercent of cur; it reports the new GOGC and whether it
// changed.
func (t *gcTuner) tune(cur heapSample) (int, bool) {
	if t == nil || cur.live == 0 {
		return 0, false // no collection yet
	}
	p := gcPercent(cur.live, cur.roots)
	if p == t.current || (p != 100 && p > t.current-gcPercentStep && p < t.current+gcPercentStep) {
		return t.current, false
	}
	t.set(p)
	t.current = p
	return p, true
}

// readHeap reads samples (named in trimMetrics' order) and returns what
// they say.
func readHeap(samples []metrics.Sample) heapSample {
	metrics.Read(samples)
	v := func(i int) uint64 {
		if samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return samples[i].Value.Uint64()
	}
	return heapSample{allocs: v(0), live: v(1), held: v(2) + v(3), roots: v(4) + v(5)}
}

// runIdleTrim trims the heap whenever shouldTrim says so, and keeps the
// collector's headroom floor (gcTuner), until ctx ends.
func runIdleTrim(ctx context.Context, log *zap.Logger) {
	tuner := newGCTuner(os.Getenv, debug.SetGCPercent)
	samples := make([]metrics.Sample, len(trimMetrics))
	for i, name := range trimMetrics {
		samples[i].Name = name
	}
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	prev := readHeap(samples)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := readHeap(samples)
		if shouldTrim(prev, cur) {
			debug.FreeOSMemory()
			after := readHeap(samples)
			log.Debug("heap trimmed after a burst", zap.Uint64("held_bytes", cur.held), zap.Uint64("live_bytes", after.live))
			cur = after
		}
		if p, ok := tuner.tune(cur); ok {
			log.Debug("GOGC set for the heap's headroom", zap.Int("gogc", p), zap.Uint64("live_bytes", cur.live))
		}
		prev = cur
	}
}
