package metrics

import (
	"maps"
	"sync"
	"testing"
)

// TestIdentifications: every outcome counted is exported under its kind
// and outcome, from concurrent counters and from counter functions asked
// for more than once (the daemon asks for one per attestor).
func TestIdentifications(t *testing.T) {
	s := New()
	count := s.Identifications()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				count("process", "found")
				count("container", "gone")
			}
		})
	}
	wg.Wait()
	s.Identifications()("process", "found")
	s.Identifications()("process", "hidden")
	got := map[string]float64{}
	families, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "credsidecar_identifications_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["kind"]+"/"+labels["outcome"]] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"container/gone": 200, "process/found": 201, "process/hidden": 1}
	if !maps.Equal(got, want) {
		t.Fatalf("credsidecar_identifications_total: %v, want %v", got, want)
	}
}
