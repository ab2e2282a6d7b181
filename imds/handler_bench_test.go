package imds

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

type benchConn struct{ net.Conn }

func (benchConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000} }
func (benchConn) LocalAddr() net.Addr  { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8169} }

// BenchmarkCachedIMDSCredentials is the server's share of the hot path: the
// router, the IMDSv2 token check, the trust decision, the cache hit and the
// pre-rendered body (ns/op and allocs/op; the network is not included).
func BenchmarkCachedIMDSCredentials(b *testing.B) {
	f := newFixture(b, mainConfigYAML("required"), fixtureOpts{})
	h := f.srv.Handler()
	ctx := f.srv.ConnContext(context.Background(), benchConn{})
	put := httptest.NewRequest(http.MethodPut, tokenPath, nil).WithContext(ctx)
	put.RemoteAddr = "127.0.0.1:40000"
	put.Host = "169.254.169.254"
	put.Header.Set(tokenTTLHeader, "21600")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, put)
	tok := rec.Body.String()
	req := httptest.NewRequest(http.MethodGet, credsPath+"/app", nil).WithContext(ctx)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Host = "169.254.169.254"
	req.Header.Set(tokenHeader, tok)
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(s int)           { d.status = s }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
