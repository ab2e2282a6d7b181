package main

import (
	"context"
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
	return heapSample{allocs: v(0), live: v(1), held: v(2) + v(3)}
}

// runIdleTrim trims the heap whenever shouldTrim says so, until ctx ends.
func runIdleTrim(ctx context.Context, log *zap.Logger) {
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
		prev = cur
	}
}
