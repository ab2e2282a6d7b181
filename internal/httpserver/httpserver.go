// Package httpserver builds the http.Server of every credsidecar listener
// (credentials, admin, the local STS API) and of the bench's bare baseline,
// so that all of them share one set of timeouts and one header bound.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// The bounds of every server.
const (
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 10 * time.Second
	// WriteTimeout is longer than the agent's fetch deadline (10s), so the
	// answer to a slow cold fetch is not cut off.
	WriteTimeout   = 20 * time.Second
	IdleTimeout    = 120 * time.Second
	MaxHeaderBytes = 16 << 10
)

// Options are what differs between listeners.
type Options struct {
	// Handler serves the requests.
	Handler http.Handler
	// ConnContext, when set, derives each connection's context (the IMDS
	// listeners attach the connection's caller to it).
	ConnContext func(context.Context, net.Conn) context.Context
	// ConnState, when set, follows each connection's state (the
	// connection limiter tells idle connections from busy ones by it).
	ConnState func(net.Conn, http.ConnState)
	// Logger receives net/http's own errors (TLS-less probes, header
	// overflows), under the name "http"; nil discards them.
	Logger *zap.Logger
}

// New returns a server with the read-header, read, write and idle
// timeouts and the header bound above.
func New(opts Options) *http.Server {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &http.Server{
		Handler:           opts.Handler,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnContext:       opts.ConnContext,
		ConnState:         opts.ConnState,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}

// Serve serves srv on l until Shutdown or Close; those are not errors.
func Serve(srv *http.Server, l net.Listener) error {
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	}
	return nil
}
