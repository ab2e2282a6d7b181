package imds

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/internal/connlimit"
	"github.com/credsidecar/credsidecar/internal/httpserver"
	"github.com/credsidecar/credsidecar/metrics"
)

// BenchmarkServeKeepAlive is keep-alive connections on 127.0.0.1 asking
// for cached IMDS credentials in closed loops, against stacks that
// add the sidecar's pieces one by one to the bench's bare server (the
// same http.Server settings, a handler writing the same bytes):
//
//	bare      the bare handler
//	limited   + the connection limiter and ConnContext (as serve wires them)
//	direct    + the sidecar's adapter, without the router
//	sidecar   + the router (gorilla/mux's Match): the credential listener as served
//
// ns/op includes the client and the kernel; the differences between rows
// are the server's pieces.
func BenchmarkServeKeepAlive(b *testing.B) {
	f, tok, body := serveFixture(b)
	bare := bareHandler(body)
	for _, tc := range []struct {
		name    string
		h       http.Handler
		limited bool
	}{
		{"bare", bare, false},
		{"limited", bare, true},
		{"direct", directHandler(b, f.srv, credsPath+"/{role}"), true},
		{"sidecar", f.srv.Handler(), true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			addr := serveStack(b, f.srv, tc.h, tc.limited)
			// A token bound to 127.0.0.1: the connection's address.
			raw := []byte("GET " + credsPath + "/app HTTP/1.1\r\nHost: " + addr + "\r\n" + tokenHeader + ": " + tok + "\r\n\r\n")
			check := func(c net.Conn, br *bufio.Reader) {
				if n, err := roundTrip(c, br, raw); err != nil || n != len(body) {
					b.Fatalf("first request: %d bytes (want %d): %v", n, len(body), err)
				}
			}
			// Keep-alive connections, 16 per P as the bench's 32 on two
			// cores: the figure is CPU per request, client included.
			b.SetParallelism(16)
			b.ResetTimer()
			cpu0 := cpuTime()
			defer func() {
				// CPU time per request (client, server and kernel, all in
				// this process): on a shared machine it moves far less
				// than ns/op, which counts waiting for the other tenants.
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			}()
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				br := bufio.NewReaderSize(c, 4096)
				check(c, br)
				for pb.Next() {
					if _, err := roundTrip(c, br, raw); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// serveFixture is the TCP benchmarks' sidecar, an IMDSv2 token bound to
// 127.0.0.1 (the connections' address) for its local-dev client, and the
// sidecar's credentials body for that token, to give the bare handlers the
// same bytes.
func serveFixture(b *testing.B) (*fixture, string, []byte) {
	f := newFixture(b, mainConfigYAML("required"), fixtureOpts{metrics: metrics.New()})
	f.srv.log = zap.NewNop()
	ctx := f.srv.ConnContext(context.Background(), benchConn{})
	tok := f.srv.tokens.issue(time.Now().Add(time.Hour), "local-dev", benchConn{}.RemoteAddr().(*net.TCPAddr).AddrPort().Addr())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, credsPath+"/app", nil)
	req.RemoteAddr, req.Host = "127.0.0.1:40000", "127.0.0.1"
	req.Header.Set(tokenHeader, tok)
	w := &discardWriter{h: http.Header{}}
	var body []byte
	f.srv.Handler().ServeHTTP(bodyWriter{w, &body}, req)
	if w.status != 200 {
		b.Fatalf("status %d", w.status)
	}
	return f, tok, body
}

// serveStack serves h on 127.0.0.1 with the sidecar's http.Server settings
// (and, when limited, the connection limiter and srv's ConnContext, as serve
// wires them) until b ends, and returns its address.
func serveStack(b *testing.B, srv *Server, h http.Handler, limited bool) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	opts := httpserver.Options{Handler: h}
	if limited {
		lim := connlimit.New(connlimit.Options{Source: ConnSource})
		opts.ConnContext, opts.ConnState = srv.ConnContext, lim.ConnState
		ln = lim.Listener(ln)
	}
	hs := httpserver.New(opts)
	done := make(chan error, 1)
	go func() { done <- httpserver.Serve(hs, ln) }()
	b.Cleanup(func() {
		hs.Close()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	return ln.Addr().String()
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bodyWriter keeps what is written.
type bodyWriter struct {
	*discardWriter
	body *[]byte
}

func (w bodyWriter) Write(p []byte) (int, error) {
	*w.body = append(*w.body, p...)
	return w.discardWriter.Write(p)
}

// bareHandler is the bench's bare server (bench/servers.go): the body with
// its Content-Type and Content-Length, nothing else.
func bareHandler(body []byte) http.Handler {
	textPlain := []string{"text/plain"}
	bodyLen := []string{strconv.Itoa(len(body))}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = textPlain
		h["Content-Length"] = bodyLen
		w.Write(body)
	})
}

// roundTrip writes raw and reads one response, returning its body length.
func roundTrip(c net.Conn, br *bufio.Reader, raw []byte) (int, error) {
	if _, err := c.Write(raw); err != nil {
		return 0, err
	}
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.1 200")) {
		return 0, errors.New("status " + strings.TrimSpace(string(line)))
	}
	length := -1
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		return 0, errors.New("no Content-Length")
	}
	_, err = br.Discard(length)
	return length, err
}

// BenchmarkServeCold is botocore's cold sequence (token PUT, role list,
// credentials GET) on a new connection each time, four per P at once (8
// on two cores, as the bench runs it), against the same stacks as BenchmarkServeKeepAlive:
//
//	bare      a handler answering the three with fixed bodies
//	limited   + the connection limiter and ConnContext
//	sidecar   the credential listener as served
//
// cpu-ns/op is CPU per sequence, client and kernel included: the
// differences between rows are the server's pieces per new connection.
func BenchmarkServeCold(b *testing.B) {
	f, tok, body := serveFixture(b)
	bare := bareColdHandler([]byte(tok), []byte("app"), body)
	for _, tc := range []struct {
		name    string
		h       http.Handler
		limited bool
	}{
		{"bare", bare, false},
		{"limited", bare, true},
		{"sidecar", f.srv.Handler(), true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			addr := serveStack(b, f.srv, tc.h, tc.limited)
			put := []byte("PUT " + tokenPath + " HTTP/1.1\r\nHost: " + addr + "\r\n" + tokenTTLHeader + ": 21600\r\n\r\n")
			b.SetParallelism(4)
			b.ResetTimer()
			cpu0 := cpuTime()
			defer func() {
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			}()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := coldSequence(addr, put); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// coldSequence is one cold sequence on a new connection, the GETs with the
// token the PUT answered.
func coldSequence(addr string, put []byte) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 4096)
	var tok []byte
	if _, err := roundTripBody(c, br, put, &tok); err != nil {
		return err
	}
	h := "\r\n" + tokenHeader + ": " + string(tok) + "\r\n\r\n"
	for _, p := range []string{credsPath + "/", credsPath + "/app"} {
		if _, err := roundTrip(c, br, []byte("GET "+p+" HTTP/1.1\r\nHost: "+addr+h)); err != nil {
			return err
		}
	}
	return nil
}

// roundTripBody is roundTrip keeping the body in *body.
func roundTripBody(c net.Conn, br *bufio.Reader, raw []byte, body *[]byte) (int, error) {
	if _, err := c.Write(raw); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, errors.New("status " + resp.Status)
	}
	*body, err = io.ReadAll(resp.Body)
	return len(*body), err
}

// bareColdHandler answers as the bench's bare server: the token for a PUT,
// the role list for a path ending in "/", the body otherwise.
func bareColdHandler(token, role, body []byte) http.Handler {
	textPlain := []string{"text/plain"}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = textPlain
		b := body
		switch {
		case r.Method == http.MethodPut:
			h[tokenTTLHeader] = r.Header[tokenTTLHeader]
			b = token
		case strings.HasSuffix(r.URL.Path, "/"):
			b = role
		}
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
		w.Write(b)
	})
}
