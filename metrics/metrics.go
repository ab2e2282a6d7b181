// Package metrics holds credsidecar's Prometheus collectors, registered on a
// registry built by main (never the global one), with the names of
// PRODUCT.md. It implements the small metrics interfaces that agent and imds
// declare, so those packages do not import Prometheus.
package metrics

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Set is every collector of the process.
type Set struct {
	Registry        *prometheus.Registry
	credRequests    *prometheus.CounterVec
	requestDuration *durations
	stsRequests     *prometheus.CounterVec
	cacheHits       prometheus.Counter
	cacheMisses     prometheus.Counter
	refreshFailures prometheus.Counter
	reloads         *prometheus.CounterVec
	// codes memoizes status code label strings (bounded: HTTP codes).
	codes [600]string
	// endpoints holds the labelled children per endpoint (endpoint ->
	// *endpointMetrics), shared by every recorder of that endpoint.
	endpoints sync.Map

	identOnce sync.Once
	idents    *prometheus.CounterVec
}

type endpointMetrics struct {
	duration *durationHist
	byCode   [600]atomic.Pointer[prometheus.Counter]
}

// New registers the collectors on a new registry, with the Go runtime and
// process collectors.
func New() *Set {
	r := prometheus.NewRegistry()
	s := &Set{
		Registry: r,
		credRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credsidecar_credential_requests_total",
			Help: "Requests to the credential listeners, by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}),
		requestDuration: newDurations(),
		stsRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credsidecar_sts_requests_total",
			Help: "Logical calls to the credential source (real STS or the local emulator), by operation and result.",
		}, []string{"operation", "result"}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "credsidecar_cache_hits_total", Help: "Credential requests served from the cache.",
		}),
		cacheMisses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "credsidecar_cache_misses_total", Help: "Credential requests that needed a source call.",
		}),
		refreshFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "credsidecar_refresh_failures_total", Help: "Background renewals that failed (and will be retried with backoff).",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "credsidecar_config_reloads_total", Help: "Config reloads, by result (success or failure).",
		}, []string{"result"}),
	}
	for i := range s.codes {
		s.codes[i] = strconv.Itoa(i)
	}
	r.MustRegister(s.credRequests, s.requestDuration, s.stsRequests, s.cacheHits, s.cacheMisses, s.refreshFailures, s.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// CacheGauges registers the gauges read from the agent at scrape time.
func (s *Set) CacheGauges(entries func() int, earliest func() time.Time) {
	s.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "credsidecar_cache_entries", Help: "Sessions in the credential cache.",
		}, func() float64 { return float64(entries()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "credsidecar_cache_earliest_expiry_timestamp_seconds", Help: "Earliest expiry among cached sessions (unix seconds; 0 when empty).",
		}, func() float64 {
			t := earliest()
			if t.IsZero() {
				return 0
			}
			return float64(t.Unix())
		}),
	)
}

// Endpoint returns the recorder of one credential endpoint's requests
// (imds.Metrics): the front end asks once per endpoint, when it builds its
// routes, so a request costs no label lookup (a sync.Map load and the
// hash of the endpoint's name were ~0.1 µs of each cached request) and,
// for the codes it has seen, no lookup at all.
func (s *Set) Endpoint(endpoint string) func(code int, d time.Duration) {
	v, _ := s.endpoints.LoadOrStore(endpoint, &endpointMetrics{duration: s.requestDuration.endpoint(endpoint)})
	em := v.(*endpointMetrics)
	// Every endpoint answers 200 (its hot code): resolved up front.
	ok := s.credRequests.WithLabelValues(endpoint, s.codes[200])
	return func(code int, d time.Duration) {
		switch {
		case code == 200:
			ok.Inc()
		case code > 0 && code < len(em.byCode):
			c := em.byCode[code].Load()
			if c == nil {
				ctr := s.credRequests.WithLabelValues(endpoint, s.codes[code])
				c = &ctr
				em.byCode[code].Store(c)
			}
			(*c).Inc()
		default:
			s.credRequests.WithLabelValues(endpoint, "other").Inc()
		}
		if d > 0 {
			em.duration.observe(d)
		}
	}
}

// CacheHit implements agent.Metrics.
func (s *Set) CacheHit() { s.cacheHits.Inc() }

// CacheMiss implements agent.Metrics.
func (s *Set) CacheMiss() { s.cacheMisses.Inc() }

// STSRequest implements agent.Metrics.
func (s *Set) STSRequest(operation, result string) {
	s.stsRequests.WithLabelValues(operation, result).Inc()
}

// RefreshFailure implements agent.Metrics.
func (s *Set) RefreshFailure() { s.refreshFailures.Inc() }

// Reload counts a config reload ("success" or "failure").
func (s *Set) Reload(result string) { s.reloads.WithLabelValues(result).Inc() }

// durationBounds are the upper bounds of credsidecar_request_duration_seconds's
// buckets, in seconds.
var durationBounds = [...]float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .05, .1, .5, 1, 5}

// durations is credsidecar_request_duration_seconds, a histogram per
// endpoint kept by hand and exposed as constant histograms when scraped:
// an observation is a bucket search over integers and two atomic adds,
// where prometheus.Histogram's Observe (hot and cold counts, a CAS loop
// for the float sum) took ~70 ns, a sixth of the cached request's
// handler. A scrape concurrent with requests may see a sum a few
// observations apart from the counts, which Prometheus tolerates.
type durations struct {
	desc *prometheus.Desc
	mu   sync.Mutex
	byEP map[string]*durationHist // guarded by mu
}

// durationHist is one endpoint's histogram.
type durationHist struct {
	// counts[i] counts observations in (bound i-1, bound i]; the last
	// counts those above every bound.
	counts [len(durationBounds) + 1]atomic.Uint64
	sumNS  atomic.Int64
}

// durationBoundsNS are durationBounds in nanoseconds.
var durationBoundsNS = func() (out [len(durationBounds)]int64) {
	for i, b := range durationBounds {
		out[i] = int64(b * float64(time.Second))
	}
	return out
}()

func newDurations() *durations {
	return &durations{
		desc: prometheus.NewDesc("credsidecar_request_duration_seconds",
			"Time to answer a request on the credential listeners, by endpoint.", []string{"endpoint"}, nil),
		byEP: map[string]*durationHist{},
	}
}

// endpoint returns the histogram of endpoint, creating it on first use.
func (ds *durations) endpoint(endpoint string) *durationHist {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	h := ds.byEP[endpoint]
	if h == nil {
		h = &durationHist{}
		ds.byEP[endpoint] = h
	}
	return h
}

func (h *durationHist) observe(d time.Duration) {
	i := 0
	for i < len(durationBoundsNS) && int64(d) > durationBoundsNS[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sumNS.Add(int64(d))
}

// Describe implements prometheus.Collector.
func (ds *durations) Describe(ch chan<- *prometheus.Desc) { ch <- ds.desc }

// Collect implements prometheus.Collector.
func (ds *durations) Collect(ch chan<- prometheus.Metric) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	for ep, h := range ds.byEP {
		buckets := make(map[float64]uint64, len(durationBounds))
		var n uint64
		for i, b := range durationBounds {
			n += h.counts[i].Load()
			buckets[b] = n
		}
		n += h.counts[len(durationBounds)].Load()
		ch <- prometheus.MustNewConstHistogram(ds.desc, n, float64(h.sumNS.Load())/float64(time.Second), buckets, ep)
	}
}
