package metrics

import (
	"math"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// TestEndpointRecorder: an endpoint's recorder counts requests by code and
// fills the duration histogram (cumulative buckets with inclusive upper
// bounds, count and sum), as the scrape shows them.
func TestEndpointRecorder(t *testing.T) {
	s := New()
	rec := s.Endpoint("imds_credentials")
	for _, d := range []time.Duration{20 * time.Microsecond, 50 * time.Microsecond, 300 * time.Microsecond, 10 * time.Second} {
		rec(200, d)
	}
	rec(403, time.Millisecond)
	rec(0, 0) // no code, no duration: counted as "other", not observed
	rec2 := s.Endpoint("imds_credentials")
	if rec2 == nil {
		t.Fatal("a second recorder of the same endpoint")
	}

	mfs, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	codes := map[string]float64{}
	for _, m := range byName["credsidecar_credential_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["endpoint"] != "imds_credentials" {
			t.Fatalf("endpoint label %q", labels["endpoint"])
		}
		codes[labels["code"]] = m.GetCounter().GetValue()
	}
	if codes["200"] != 4 || codes["403"] != 1 || codes["other"] != 1 {
		t.Fatalf("requests by code = %v", codes)
	}

	hs := byName["credsidecar_request_duration_seconds"].GetMetric()
	if len(hs) != 1 {
		t.Fatalf("%d duration histograms, want 1", len(hs))
	}
	h := hs[0].GetHistogram()
	if h.GetSampleCount() != 5 {
		t.Fatalf("count %d, want 5", h.GetSampleCount())
	}
	if want := (20e-6 + 50e-6 + 300e-6 + 10 + 1e-3); math.Abs(h.GetSampleSum()-want) > 1e-9 {
		t.Fatalf("sum %g, want %g", h.GetSampleSum(), want)
	}
	want := map[float64]uint64{.00005: 2, .0001: 2, .00025: 2, .0005: 3, .001: 4, 5: 4}
	for _, b := range h.GetBucket() {
		if n, ok := want[b.GetUpperBound()]; ok && b.GetCumulativeCount() != n {
			t.Errorf("bucket le=%g: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), n)
		}
	}
	if len(h.GetBucket()) != len(durationBounds) {
		t.Fatalf("%d buckets, want %d", len(h.GetBucket()), len(durationBounds))
	}

	// The second recorder shares the first's series: no second histogram,
	// and its requests add to the same counts.
	rec2(200, time.Millisecond)
	if mfs, err = s.Registry.Gather(); err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "credsidecar_credential_requests_total":
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "code" && l.GetValue() == "200" && m.GetCounter().GetValue() != 5 {
						t.Fatalf("200s after the second recorder: %g, want 5", m.GetCounter().GetValue())
					}
				}
			}
		case "credsidecar_request_duration_seconds":
			if ms := mf.GetMetric(); len(ms) != 1 || ms[0].GetHistogram().GetSampleCount() != 6 {
				t.Fatalf("duration histograms after the second recorder: %v, want one of 6", ms)
			}
		}
	}
}

// BenchmarkEndpointRecorder is one request's metrics: the 200 counter and
// the duration histogram.
func BenchmarkEndpointRecorder(b *testing.B) {
	rec := New().Endpoint("imds_credentials")
	b.ReportAllocs()
	for i := range b.N {
		rec(200, time.Duration(100+i%1000)*time.Microsecond)
	}
}
