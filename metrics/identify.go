package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Identifications returns a counter function for workload identification
// outcomes: kind is "process" or "container", outcome one of a bounded set
// (found, ambiguous, gone, hidden, busy, unknown, unavailable). It
// registers the counter on first use.
//
// Each new connection of a workload-matched client counts one outcome, so
// the function keeps the counters it resolved: the vector's label lookup
// (hashing, validating and finding the label values) cost more than a
// pinned process's whole attestation.
func (s *Set) Identifications() func(kind, outcome string) {
	s.identOnce.Do(func() {
		s.idents = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credsidecar_identifications_total",
			Help: "Workload identifications of callers (host processes, containers), by kind and outcome.",
		}, []string{"kind", "outcome"})
		s.Registry.MustRegister(s.idents)
	})
	var (
		mu       sync.RWMutex
		resolved = map[[2]string]prometheus.Counter{}
	)
	return func(kind, outcome string) {
		k := [2]string{kind, outcome}
		mu.RLock()
		c := resolved[k]
		mu.RUnlock()
		if c == nil {
			c = s.idents.WithLabelValues(kind, outcome)
			mu.Lock()
			resolved[k] = c
			mu.Unlock()
		}
		c.Inc()
	}
}
