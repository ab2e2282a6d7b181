package imds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/configtest"
	"github.com/credsidecar/credsidecar/internal/httpserver"
	"github.com/credsidecar/credsidecar/sts/localsts"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// servers, agents and SDK clients of every test are closed in t.Cleanup.
// No ignores are needed: HTTP keep-alive goroutines end when the test
// servers close their connections (goleak retries while they wind down).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json from the current output")

const (
	testAccount = "123456789012"
	testRegion  = "eu-west-3"
	// billingToken is the bearer token of the billing client.
	billingToken = "billing-token-0123456789"
)

// mainYAML is the fixture config: three roles, one client trusted by a
// token and one by its source address. %s is imds.tokens.
const mainYAML = `
listen: ["127.0.0.1:8169"]
region: ` + testRegion + `
imds: { tokens: %s }
sts:
  mode: local
  local:
    account_id: "` + testAccount + `"
roles:
  - name: app
    duration: 1h
    session_name: "{{.Client}}-app"
  - name: reports
    duration: 30m
  - name: admin
    duration: 15m
clients:
  - name: billing
    match: { token: ` + billingToken + ` }
    roles: [reports, app]
  - name: local-dev
    match: { source_cidrs: ["127.0.0.1/32"] }
    roles: [app]
`

// noClientYAML has no client that a token-less caller on 127.0.0.1 matches:
// one by token, one by an address that excludes 127.0.0.1.
const noClientYAML = `
region: ` + testRegion + `
sts: { mode: local, local: { account_id: "` + testAccount + `" } }
roles:
  - name: app
clients:
  - name: billing
    match: { token: ` + billingToken + ` }
    roles: [app]
  - name: elsewhere
    match: { source_cidrs: ["127.0.0.2/32"] }
    roles: [app]
`

// sharedYAML has one client for 127.0.0.1 and 127.0.0.2, so a token
// replayed from the other address differs from its issue only in address.
const sharedYAML = `
region: ` + testRegion + `
sts: { mode: local, local: { account_id: "` + testAccount + `" } }
roles:
  - name: app
clients:
  - name: loopback
    match: { source_cidrs: ["127.0.0.1/32", "127.0.0.2/32"] }
    roles: [app]
`

func mainConfigYAML(tokens string) string { return fmt.Sprintf(mainYAML, tokens) }

// parseConfig is what config.Load does, from bytes: parse, validate, and
// resolve secret references (without Resolve, literal tokens stay empty).
func parseConfig(t testing.TB, yml string) *config.Config {
	t.Helper()
	return configtest.Parse(t, yml)
}

// localSource is local mode's real source: the emulated account and issuer.
func localSource(t testing.TB, cfg *config.Config) agent.Source {
	t.Helper()
	acct, err := localsts.NewAccount(cfg, localsts.RandomUserKeys)
	if err != nil {
		t.Fatalf("localsts.NewAccount: %v", err)
	}
	iss, err := localsts.NewIssuer(localsts.RandomKey(), clock.Real{}, acct)
	if err != nil {
		t.Fatalf("localsts.NewIssuer: %v", err)
	}
	return localsts.NewSource(iss)
}

// staticSource is a fake source with fixed, role-derived credentials, so
// rendered bodies can be compared with golden files.
type staticSource struct{ calls atomic.Int64 }

var (
	staticIssued     = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	staticExpiration = time.Date(2099, 1, 2, 4, 4, 5, 0, time.UTC)
)

func (s *staticSource) Retrieve(_ context.Context, req agent.Request) (*agent.Credentials, error) {
	s.calls.Add(1)
	name := req.RoleARN[strings.LastIndex(req.RoleARN, "/")+1:]
	return &agent.Credentials{
		AccessKeyID:     "ASIAFAKE" + strings.ToUpper(name + strings.Repeat("X", 12))[:12],
		SecretAccessKey: "secret/" + name,
		SessionToken:    "token/" + name + "/" + req.SessionName,
		Expiration:      staticExpiration,
		Issued:          staticIssued,
		RoleARN:         req.RoleARN,
		AccountID:       testAccount,
		AssumedRoleARN:  "arn:aws:sts::" + testAccount + ":assumed-role/" + name + "/" + req.SessionName,
	}, nil
}

// recMetrics records the server's observations as "endpoint code".
type recMetrics struct {
	mu   sync.Mutex
	seen map[string]int
	// changed is closed (and replaced) on every observation.
	changed chan struct{}
}

func (m *recMetrics) Endpoint(ep string) func(int, time.Duration) {
	return func(code int, d time.Duration) { m.Request(ep, code, d) }
}

func (m *recMetrics) Request(ep string, code int, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]int{}
	}
	m.seen[fmt.Sprintf("%s %d", ep, code)]++
	if m.changed != nil {
		close(m.changed)
		m.changed = nil
	}
}

// await waits until cond holds over the observations, or d has passed; it
// reports whether cond held.
func (m *recMetrics) await(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		m.mu.Lock()
		if m.changed == nil {
			m.changed = make(chan struct{})
		}
		ch := m.changed
		m.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return cond()
		}
	}
}

func (m *recMetrics) count(ep string, code int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[fmt.Sprintf("%s %d", ep, code)]
}

type fixtureOpts struct {
	// source defaults to the real local source.
	source agent.Source
	// warm turns the agent's warm-up on (off by default for exact counts).
	warm bool
	// clock is the server's clock (tokens); the agent uses the wall clock.
	clock clock.Clock
	// wrap wraps the agent the server sees.
	wrap func(Agent) Agent
	// uid is the server's UIDLookup (nil: uid conditions fail closed).
	uid UIDLookup
	// audit is the server's Auditor (nil: off).
	audit Auditor
	// jwt is the server's JWT verifier (nil: none).
	jwt JWTVerifier
	// metrics replaces the recording fake (benchmarks use the real set).
	metrics Metrics
}

// fixture is an assembled server: config, real agent, Server, and (when
// started) a listener on 127.0.0.1.
type fixture struct {
	cfg     *config.Config
	agent   *agent.Agent
	srv     *Server
	metrics *recMetrics
	// addr is host:port of the listener; url is http://addr.
	addr, url string
}

// newFixture builds the agent and server without a listener (for
// httptest.NewRecorder tests and fuzzing).
func newFixture(t testing.TB, yml string, o fixtureOpts) *fixture {
	return buildFixture(t, yml, o, nil)
}

// startFixture builds the fixture and serves it on 127.0.0.1 with the
// production http.Server (timeouts, ConnContext).
func startFixture(t testing.TB, yml string, o fixtureOpts) *fixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return buildFixture(t, yml, o, ln)
}

func buildFixture(t testing.TB, yml string, o fixtureOpts, ln net.Listener) *fixture {
	t.Helper()
	f := &fixture{cfg: parseConfig(t, yml), metrics: &recMetrics{}}
	src := o.source
	if src == nil {
		src = localSource(t, f.cfg)
	}
	log := zaptest.NewLogger(t)
	if _, fuzz := t.(*testing.F); fuzz {
		// A fuzz target may not log through its *testing.F.
		log = zap.NewNop()
	}
	var err error
	f.agent, err = agent.New(agent.Options{Source: src, Logger: log.Named("agent"), DisableWarm: !o.warm}, f.cfg)
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	t.Cleanup(f.agent.Close)
	var ag Agent = f.agent
	if o.wrap != nil {
		ag = o.wrap(ag)
	}
	opts := Options{Agent: ag, Config: f.cfg, Logger: log.Named("imds"), Clock: o.clock, Metrics: f.metrics, UIDLookup: o.uid, Audit: o.audit, JWT: o.jwt}
	if o.metrics != nil {
		opts.Metrics = o.metrics
	}
	if ln != nil {
		f.addr = ln.Addr().String()
		f.url = "http://" + f.addr
		opts.ListenAddrs = []string{f.addr}
	}
	f.srv, err = New(opts)
	if err != nil {
		t.Fatalf("imds.New: %v", err)
	}
	if ln != nil {
		hs := httpserver.New(httpserver.Options{Handler: f.srv.Handler(), ConnContext: f.srv.ConnContext, Logger: log})
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("serve: %v", err)
			}
		}()
		// Registered after agent.Close, so it runs before it.
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := hs.Shutdown(ctx); err != nil {
				hs.Close()
			}
			<-done
		})
	}
	return f
}

// newClient returns an HTTP client whose connections come from localIP
// (an address of 127.0.0.0/8), never reused across tests.
func newClient(t testing.TB, localIP string) *http.Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(localIP)}}
	tr := &http.Transport{DialContext: d.DialContext, Proxy: nil, MaxIdleConnsPerHost: 100}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// response is what a test inspects of an answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request to the fixture's listener. host, when not "",
// replaces the Host header.
func (f *fixture) call(t testing.TB, c *http.Client, method, path, host string, hdr http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if host != "" {
		req.Host = host
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// token asks the fixture for an IMDSv2 token through c.
func (f *fixture) token(t testing.TB, c *http.Client, ttl string) string {
	t.Helper()
	r := f.call(t, c, http.MethodPut, tokenPath, "", http.Header{"X-Aws-Ec2-Metadata-Token-Ttl-Seconds": {ttl}})
	if r.status != http.StatusOK {
		t.Fatalf("PUT token: status %d, body %s", r.status, r.body)
	}
	return string(r.body)
}

// checkError asserts an error answer: status, JSON Content-Type, and a body
// that is exactly {"code","message"} with code want.
func checkError(t testing.TB, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("error body %q is not {code,message} JSON: %v", r.body, err)
	}
	if e.Code != code || e.Message == "" {
		t.Errorf("error body = %+v, want code %q and a message", e, code)
	}
}

// golden compares got with testdata/name.golden.json, or .golden.txt for a
// body that is not a JSON object (-update rewrites it).
func golden(t testing.TB, name string, got []byte) {
	t.Helper()
	ext := ".golden.json"
	if !bytes.HasPrefix(got, []byte("{")) {
		ext = ".golden.txt"
	}
	path := filepath.Join("testdata", name+ext)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n got: %s\nwant: %s", name, path, got, want)
	}
}

// callerAt is the agent's view of a token-less caller at addr.
func callerAt(addr string) *agent.Caller {
	return &agent.Caller{Addr: netip.MustParseAddr(addr)}
}

// waitForGoroutines waits until at least n goroutines have fn in their
// stacks, or until the deadline passes (then it returns false). It observes
// where goroutines are parked, which no channel can tell from outside a
// package.
func waitForGoroutines(fn string, n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	buf := make([]byte, 8<<20)
	for time.Now().Before(deadline) {
		k := runtime.Stack(buf, true)
		if strings.Count(string(buf[:k]), fn) >= n {
			return true
		}
		runtime.Gosched()
	}
	return false
}
