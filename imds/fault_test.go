package imds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/internal/httpserver"
)

// faultySource wraps a real source with injectable faults.
type faultySource struct {
	next agent.Source
	mode atomic.Value // string: "", "down", "throttle", "malformed", "expired", "slow"
	slow chan struct{}
	n    atomic.Int64
}

func (f *faultySource) Retrieve(ctx context.Context, req agent.Request) (*agent.Credentials, error) {
	f.n.Add(1)
	m, _ := f.mode.Load().(string)
	switch m {
	case "down":
		return nil, errors.New("dial tcp: connection refused")
	case "throttle":
		return nil, &agent.SourceError{Code: "Throttling", Message: "Rate exceeded", Retryable: true}
	case "malformed":
		return &agent.Credentials{AccessKeyID: "ASIAX", Expiration: time.Now().Add(time.Hour)}, nil
	case "expired":
		return &agent.Credentials{AccessKeyID: "ASIAX", SecretAccessKey: "s", SessionToken: "t", Expiration: time.Now().Add(-time.Second)}, nil
	case "slow":
		select {
		case <-f.slow:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return f.next.Retrieve(ctx, req)
}

// TestSourceFaultsInvisibleWhileCached: whatever the source does, requests
// for a role whose cached credentials are valid never fail, and a cold role
// fails cleanly (5xx JSON), never with a hang or a crash.
func TestSourceFaultsInvisibleWhileCached(t *testing.T) {
	cfg := parseConfig(t, mainConfigYAML("required"))
	src := &faultySource{next: localSource(t, cfg), slow: make(chan struct{})}
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{source: src})
	c := newClient(t, "127.0.0.1")
	billing := http.Header{"Authorization": {billingToken}}
	if r := f.call(t, c, http.MethodGet, "/role/app", "", billing); r.status != 200 {
		t.Fatalf("warm: %d %s", r.status, r.body)
	}
	for _, mode := range []string{"down", "throttle", "malformed", "expired", "slow", "down", ""} {
		src.mode.Store(mode)
		for range 20 {
			if r := f.call(t, c, http.MethodGet, "/role/app", "", billing); r.status != 200 {
				t.Fatalf("source %q: cached role failed with %d %s", mode, r.status, r.body)
			}
		}
	}
	// A cold role (its definition just changed, so its session was dropped)
	// fails with a clean 503 JSON while the source is broken, and recovers
	// without a restart.
	i := 0
	for _, mode := range []string{"down", "throttle", "malformed", "expired"} {
		src.mode.Store(mode)
		i++
		f.agent.Apply(parseConfig(t, strings.Replace(mainConfigYAML("required"), "duration: 30m", fmt.Sprintf("duration: %dm", 30+i), 1)))
		r := f.call(t, c, http.MethodGet, "/role/reports", "", billing)
		if r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), `"code":"Unavailable"`) {
			t.Fatalf("cold role, source %q: %d %s", mode, r.status, r.body)
		}
		if strings.Contains(string(r.body), "ASIA") {
			t.Fatalf("error body leaks a key: %s", r.body)
		}
	}
	src.mode.Store("")
	f.agent.Apply(parseConfig(t, strings.Replace(mainConfigYAML("required"), "duration: 30m", "duration: 45m", 1)))
	if r := f.call(t, c, http.MethodGet, "/role/reports", "", billing); r.status != 200 {
		t.Fatalf("after recovery: %d %s", r.status, r.body)
	}
}

// TestSlowSourceAndImpatientCaller: a caller whose deadline passes during a
// slow source call gives up; the call goes on for the others, and other
// (cached) roles are served meanwhile.
func TestSlowSourceAndImpatientCaller(t *testing.T) {
	cfg := parseConfig(t, mainConfigYAML("required"))
	src := &faultySource{next: localSource(t, cfg), slow: make(chan struct{})}
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{source: src})
	c := newClient(t, "127.0.0.1")
	billing := http.Header{"Authorization": {billingToken}}
	if r := f.call(t, c, http.MethodGet, "/role/app", "", billing); r.status != 200 {
		t.Fatalf("warm: %d", r.status)
	}
	src.mode.Store("slow")
	impatient := &http.Client{Timeout: 200 * time.Millisecond}
	req, _ := http.NewRequest(http.MethodGet, f.url+"/role/reports", nil)
	req.Header.Set("Authorization", billingToken)
	if _, err := impatient.Do(req); err == nil {
		t.Fatal("the impatient caller should have timed out")
	}
	patient := make(chan response, 1)
	go func() { patient <- f.call(t, newClient(t, "127.0.0.1"), http.MethodGet, "/role/reports", "", billing) }()
	for range 10 {
		if r := f.call(t, c, http.MethodGet, "/role/app", "", billing); r.status != 200 {
			t.Fatalf("cached role while another is slow: %d", r.status)
		}
	}
	src.mode.Store("")
	close(src.slow)
	if r := <-patient; r.status != 200 {
		t.Fatalf("patient caller: %d %s", r.status, r.body)
	}
}

// TestThousandClients: 1000 concurrent clients, with keep-alive and
// without, against a cached role: every request succeeds.
func TestThousandClients(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	for _, keepAlive := range []bool{true, false} {
		t.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(t *testing.T) {
			tr := &http.Transport{DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 1000, MaxConnsPerHost: 0}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			var failed atomic.Int64
			var firstErr atomic.Value
			var wg sync.WaitGroup
			for range 1000 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 3 {
						req, _ := http.NewRequest(http.MethodGet, f.url+"/creds", nil)
						req.Header.Set("Authorization", billingToken)
						res, err := cl.Do(req)
						if err != nil {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, err.Error())
							return
						}
						io.Copy(io.Discard, res.Body)
						res.Body.Close()
						if res.StatusCode != 200 {
							failed.Add(1)
							firstErr.CompareAndSwap(nil, res.Status)
						}
					}
				}()
			}
			wg.Wait()
			if n := failed.Load(); n > 0 {
				t.Fatalf("%d of 3000 requests failed; first: %v", n, firstErr.Load())
			}
		})
	}
}

// TestSlowlorisAndOversized: a client that trickles its headers is cut off
// by the server's header timeout while others are served; oversized headers
// get 431 and an oversized body on a credential GET is never read.
func TestSlowlorisAndOversized(t *testing.T) {
	f := newFixture(t, mainConfigYAML("required"), fixtureOpts{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := httpserver.New(httpserver.Options{Handler: f.srv.Handler(), ConnContext: f.srv.ConnContext})
	if hs.ReadHeaderTimeout == 0 || hs.ReadTimeout == 0 || hs.WriteTimeout == 0 || hs.IdleTimeout == 0 || hs.MaxHeaderBytes == 0 {
		t.Fatalf("production server lacks a timeout or limit: %+v", hs)
	}
	hs.ReadHeaderTimeout = 300 * time.Millisecond // the production value, shortened for the test
	done := make(chan struct{})
	go func() { defer close(done); hs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		<-done
	})
	url := "http://" + ln.Addr().String()
	var slow []net.Conn
	for range 20 {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET /creds HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
		slow = append(slow, conn)
	}
	c := newClient(t, "127.0.0.1")
	req, _ := http.NewRequest(http.MethodGet, url+"/creds", nil)
	req.Header.Set("Authorization", billingToken)
	if res, err := c.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("a normal client while 20 trickle: %v %v", err, res)
	} else {
		res.Body.Close()
	}
	for _, conn := range slow {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(conn)
		if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("slowloris connection not closed by the server: %v", err)
		}
		if len(b) > 0 && !strings.Contains(string(b), "408") {
			t.Fatalf("slowloris got %q", b)
		}
		conn.Close()
	}
	// Oversized headers.
	req, _ = http.NewRequest(http.MethodGet, url+"/creds", nil)
	req.Header.Set("Authorization", billingToken)
	req.Header.Set("X-Big", strings.Repeat("a", 64<<10))
	if res, err := c.Do(req); err != nil || res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %v %v", err, res)
	} else {
		res.Body.Close()
	}
	// An oversized body on a GET is ignored, not buffered.
	req, _ = http.NewRequest(http.MethodGet, url+"/creds", strings.NewReader(strings.Repeat("b", 8<<20)))
	req.Header.Set("Authorization", billingToken)
	if res, err := c.Do(req); err == nil {
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET with a large body: %d", res.StatusCode)
		}
	}
}

// TestCacheBoundUnderManyCallers: memory stays bounded by cache.max_entries
// however many distinct sessions callers ask for.
func TestCacheBoundUnderManyCallers(t *testing.T) {
	yml := strings.Replace(mainConfigYAML("required"), "region:", "cache: {max_entries: 50}\nregion:", 1)
	yml = strings.Replace(yml, "  mode: local\n", "  mode: local\n  max_qps: 100000\n", 1)
	yml = strings.Replace(yml, `session_name: "{{.Client}}-app"`, `session_name: "{{.Client}}-{{.Addr}}"`, 1)
	yml = strings.Replace(yml, `source_cidrs: ["127.0.0.1/32"]`, `source_cidrs: ["127.0.0.0/8"]`, 1)
	f := startFixture(t, yml, fixtureOpts{})
	for i := range 200 {
		c := newClient(t, fmt.Sprintf("127.0.%d.%d", 1+i/250, 1+i%250))
		tok := f.token(t, c, "60")
		if r := f.call(t, c, http.MethodGet, credsPath+"/app", "", http.Header{tokenHeader: {tok}}); r.status != 200 {
			t.Fatalf("caller %d: %d %s", i, r.status, r.body)
		}
	}
	if n := f.agent.Len(); n > 50 {
		t.Fatalf("cache holds %d sessions, bound is 50", n)
	}
}
