package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/config"
)

// pingEngine is the smallest Docker Engine API: it answers /_ping and
// reports each request's path, and keeps the events stream open until the
// client goes away (which it reports too).
type pingEngine struct {
	paths  chan string
	closed chan struct{}
}

func (e *pingEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.paths <- r.URL.Path
	switch {
	case r.URL.Path == "/_ping":
		w.Header().Set("Api-Version", "1.41")
		w.Write([]byte("OK"))
	case r.URL.Path == "/v1.41/events":
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		e.closed <- struct{}{}
	case r.URL.Path == "/v1.41/containers/json":
		w.Write([]byte("[]"))
	default:
		http.NotFound(w, r)
	}
}

func containerConfig(t *testing.T, sock string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(`sts: {mode: local}
roles: [{name: web}]
clients: [{name: w, match: {container: {labels: {credsidecar.client: w}}}, roles: [web]}]
docker: {host: unix://` + sock + `}
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestContainersFollowReloads: the Docker resolver runs exactly while a
// client matches on containers — a reload that adds the first container
// client starts it (no restart needed), one that removes the last stops it.
func TestContainersFollowReloads(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "docker.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	eng := &pingEngine{paths: make(chan string, 64), closed: make(chan struct{}, 4)}
	srv := &http.Server{Handler: eng}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	plain, err := config.Parse([]byte("sts: {mode: local}\nroles: [{name: web}]\nclients: [{name: u, match: {uids: [0]}, roles: [web]}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := &containers{log: zap.NewNop(), count: func(string, string) {}}
	if err := c.set(plain); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.run(ctx) }()
	local, remote := netip.MustParseAddrPort("127.0.0.1:80"), netip.MustParseAddrPort("127.0.0.2:4000")
	if _, err := c.Resolve(local, remote); !errors.Is(err, errNoContainerClient) {
		t.Fatalf("without container clients Resolve = %v, want errNoContainerClient", err)
	}

	if err := c.set(containerConfig(t, sock)); err != nil {
		t.Fatal(err)
	}
	for p := range eng.paths {
		if p == "/v1.41/events" {
			break // the resolver negotiated and opened the events stream
		}
	}
	if _, err := c.Resolve(local, remote); errors.Is(err, errNoContainerClient) {
		t.Fatal("after the reload that added a container client, container lookup is still off")
	}
	// The same config again changes nothing: the same resolver runs on.
	running := c.cur.Load()
	if err := c.set(containerConfig(t, sock)); err != nil {
		t.Fatal(err)
	}
	if c.cur.Load() != running {
		t.Fatal("an unchanged reload replaced the resolver")
	}

	if err := c.set(plain); err != nil {
		t.Fatal(err)
	}
	<-eng.closed // set waits for the resolver to stop, so its stream is gone
	if _, err := c.Resolve(local, remote); !errors.Is(err, errNoContainerClient) {
		t.Fatalf("after the last container client left, Resolve = %v, want errNoContainerClient", err)
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
}
