package imds

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/metrics"
)

type benchConn struct{ net.Conn }

func (benchConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (benchConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8169} }

// BenchmarkCachedIMDSCredentials is the server's share of the hot path: the
// IMDSv2 token check, the trust decision, the cache hit, the pre-rendered
// body and the real metrics (ns/op and allocs/op; the network is not
// included), through Server.ServeHTTP as served ("router": gorilla/mux's
// Match over the string matchers) and, for comparison, dispatched straight
// to the endpoint's adapter ("direct", test-only): the difference is the
// router's share of the path.
func BenchmarkCachedIMDSCredentials(b *testing.B) {
	f := newFixture(b, mainConfigYAML("required"), fixtureOpts{metrics: metrics.New()})
	f.srv.log = zap.NewNop()
	ctx := f.srv.ConnContext(context.Background(), benchConn{})
	put := httptest.NewRequest(http.MethodPut, tokenPath, nil).WithContext(ctx)
	put.RemoteAddr = "127.0.0.1:40000"
	put.Host = "169.254.169.254"
	put.Header.Set(tokenTTLHeader, "21600")
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, put)
	tok := rec.Body.String()
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{
		{"router", f.srv.Handler()},
		{"direct", directHandler(b, f.srv, credsPath+"/{role}")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, credsPath+"/app", nil).WithContext(ctx)
			req.RemoteAddr = "127.0.0.1:40000"
			req.Host = "169.254.169.254"
			req.Header.Set(tokenHeader, tok)
			w := &discardWriter{h: http.Header{}}
			tc.h.ServeHTTP(w, req)
			if w.status != 200 || w.n < 400 {
				b.Fatalf("status %d, %d bytes", w.status, w.n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				clear(w.h)
				tc.h.ServeHTTP(w, req)
			}
		})
	}
}

// directHandler is the adapter of the route registered for path, without
// the router in front: what the path would cost with no routing at all.
func directHandler(tb testing.TB, s *Server, path string) http.Handler {
	for _, rt := range s.routeTable() {
		if rt.path == path {
			return s.adapt(rt.ep)
		}
	}
	tb.Fatalf("no route %s", path)
	return nil
}

type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(s int)           { d.status = s }
func (d *discardWriter) Write(p []byte) (int, error) { d.n = len(p); return len(p), nil }

// BenchmarkColdSequence is the server's share of botocore's cold sequence
// on a new connection: the connection state (ConnContext), the token PUT,
// the role list and the credentials GET, through the router ("router") and
// straight to each route's adapter ("direct", test-only: the difference is
// gorilla/mux's share). The network is not included; the loop's own
// requests and headers are 11 of the allocations.
func BenchmarkColdSequence(b *testing.B) {
	f := newFixture(b, mainConfigYAML("required"), fixtureOpts{metrics: metrics.New()})
	f.srv.log = zap.NewNop()
	put := httptest.NewRequest(http.MethodPut, tokenPath, nil)
	put.RemoteAddr, put.Host = "127.0.0.1:40000", "169.254.169.254"
	put.Header.Set(tokenTTLHeader, "21600")
	list := httptest.NewRequest(http.MethodGet, credsPath+"/", nil)
	list.RemoteAddr, list.Host = put.RemoteAddr, put.Host
	creds := httptest.NewRequest(http.MethodGet, credsPath+"/app", nil)
	creds.RemoteAddr, creds.Host = put.RemoteAddr, put.Host
	router := f.srv.Handler()
	direct := [3]http.Handler{directHandler(b, f.srv, tokenPath), directHandler(b, f.srv, credsPath), directHandler(b, f.srv, credsPath+"/{role}")}
	for _, tc := range []struct {
		name string
		h    func(i int) http.Handler
	}{
		{"router", func(int) http.Handler { return router }},
		{"direct", func(i int) http.Handler { return direct[i] }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			var tok []byte
			tw := bodyWriter{w, &tok}
			b.ReportAllocs()
			for range b.N {
				ctx := f.srv.ConnContext(context.Background(), benchConn{})
				tok = tok[:0]
				clear(w.h)
				tc.h(0).ServeHTTP(tw, put.WithContext(ctx))
				for i, r := range []*http.Request{list, creds} {
					r = r.WithContext(ctx)
					r.Header = http.Header{tokenHeader: {string(tok)}}
					clear(w.h)
					tc.h(i+1).ServeHTTP(w, r)
					if w.status != 200 {
						b.Fatalf("%s: status %d", r.URL.Path, w.status)
					}
				}
			}
		})
	}
}
