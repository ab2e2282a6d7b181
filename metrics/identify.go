package metrics

import "github.com/prometheus/client_golang/prometheus"

// Identifications returns a counter function for workload identification
// outcomes: kind is "process" or "container", outcome one of a bounded set
// (found, ambiguous, gone, hidden, busy, unknown, unavailable). It
// registers the counter on first use.
func (s *Set) Identifications() func(kind, outcome string) {
	s.identOnce.Do(func() {
		s.idents = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credsidecar_identifications_total",
			Help: "Workload identifications of callers (host processes, containers), by kind and outcome.",
		}, []string{"kind", "outcome"})
		s.Registry.MustRegister(s.idents)
	})
	return func(kind, outcome string) { s.idents.WithLabelValues(kind, outcome).Inc() }
}
