package httpserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewBounds(t *testing.T) {
	srv := New(Options{Handler: http.NotFoundHandler()})
	if srv.ReadHeaderTimeout != ReadHeaderTimeout || srv.ReadTimeout != ReadTimeout || srv.WriteTimeout != WriteTimeout ||
		srv.IdleTimeout != IdleTimeout || srv.MaxHeaderBytes != MaxHeaderBytes || srv.ErrorLog == nil {
		t.Fatalf("bounds not set: %+v", srv)
	}
}

// TestServeShutdown: a server serves with its ConnContext, and Shutdown
// ends Serve without an error.
func TestServeShutdown(t *testing.T) {
	type key struct{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Options{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Context().Value(key{}).(string))
		}),
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context { return context.WithValue(ctx, key{}, "conn") },
		Logger:      zaptest.NewLogger(t),
	})
	done := make(chan error, 1)
	go func() { done <- Serve(srv, l) }()
	resp, err := http.Get("http://" + l.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "conn" {
		t.Fatalf("body %q", b)
	}
	http.DefaultClient.CloseIdleConnections()
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}
