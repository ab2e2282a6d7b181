package agent

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/configtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeSource issues credentials valid for the requested duration on the
// fake clock, and can be told to fail or to block.
type fakeSource struct {
	clk *clock.Fake

	mu       sync.Mutex
	fail     error
	block    chan struct{} // when non-nil, calls wait for it to close
	started  chan struct{} // receives one value per call, if non-nil
	inflight map[string]int
	maxIn    int
	reqs     []Request

	calls atomic.Int64
	seq   atomic.Int64
}

func newFakeSource(clk *clock.Fake) *fakeSource {
	return &fakeSource{clk: clk, inflight: map[string]int{}}
}

func (f *fakeSource) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func (f *fakeSource) Retrieve(ctx context.Context, req Request) (*Credentials, error) {
	f.calls.Add(1)
	key := req.RoleARN + "/" + req.SessionName
	f.mu.Lock()
	f.inflight[key]++
	if f.inflight[key] > f.maxIn {
		f.maxIn = f.inflight[key]
	}
	f.reqs = append(f.reqs, req)
	block, started, fail := f.block, f.started, f.fail
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight[key]--
		f.mu.Unlock()
	}()
	if started != nil {
		started <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	now := f.clk.Now()
	if req.Via != nil && !now.Before(req.Via.Expiration) {
		// As STS: a chained call signed with expired credentials fails.
		return nil, &SourceError{Code: "ExpiredToken", Message: "The security token included in the request is expired"}
	}
	n := f.seq.Add(1)
	return &Credentials{
		AccessKeyID:     fmt.Sprintf("ASIATEST%012d", n),
		SecretAccessKey: "secret",
		SessionToken:    "token",
		Issued:          now,
		Expiration:      now.Add(req.Duration),
		RoleARN:         req.RoleARN,
	}, nil
}

var throttled = &SourceError{Code: "Throttling", Message: "Rate exceeded", Retryable: true}
var denied = &SourceError{Code: "AccessDenied", Message: "not authorized", Retryable: false}

// testConfig has roles app (1h), short (30m) and chained (via app); clients
// alice/bob (tokens) and net (127.0.0.0/8).
const testYAML = `
cache: {max_entries: %d, error_ttl: 5s}
sts: {mode: local, max_qps: 1000000}
roles:
  - {name: app, duration: 1h, session_name: "{{.Client}}"}
  - {name: short, duration: 30m}
  - {name: chained, duration: 1h, via: app}
  - {name: peruid, duration: 1h, session_name: "u-{{.UID}}"}
clients:
  - {name: alice, match: {token: alice-token}, roles: [app, short, chained]}
  - {name: bob, match: {token: bob-token}, roles: [app, peruid]}
  - {name: net, match: {source_cidrs: ["127.0.0.0/8"]}, roles: [short]}
`

func parseConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	return configtest.Parse(t, yaml)
}

type fixture struct {
	clk *clock.Fake
	src *fakeSource
	a   *Agent
}

func newFixture(t testing.TB, maxEntries int) *fixture {
	t.Helper()
	clk := clock.NewFake(t0)
	src := newFakeSource(clk)
	a, err := New(Options{
		Source: src, Clock: clk, Logger: zaptest.NewLogger(t),
		DisableWarm: true, Rand: func() float64 { return 0.5 },
	}, parseConfig(t, fmt.Sprintf(testYAML, maxEntries)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return &fixture{clk: clk, src: src, a: a}
}

func tokenCaller(tok string) *Caller { return &Caller{Token: tok, HasToken: true} }

func addrCaller(a string) *Caller { return &Caller{Addr: netip.MustParseAddr(a)} }

var alice = tokenCaller("alice-token")
