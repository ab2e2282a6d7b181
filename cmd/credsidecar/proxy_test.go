package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// TestCredsNeverGoThroughAProxy: with HTTP_PROXY set, `creds` still dials
// the sidecar's own address (169.254.170.2 here, the documented listener)
// and the proxy sees nothing — neither the bearer token nor the answer.
func TestCredsNeverGoThroughAProxy(t *testing.T) {
	var proxied atomic.Int64
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer proxy.Close()
	sidecar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "tok" || r.URL.Path != "/role/app" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.Write([]byte(`{"AccessKeyId":"ASIAEXAMPLE000000001","SecretAccessKey":"s","Token":"t","Expiration":"2099-01-01T00:00:00Z"}`))
	}))
	defer sidecar.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	var dialed []string
	// The dial goes to the local stand-in for 169.254.170.2: no traffic
	// leaves loopback, and the address asked for is recorded.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = append(dialed, addr)
		return (&net.Dialer{}).DialContext(ctx, network, sidecar.Listener.Addr().String())
	}
	pc, err := fetchCreds(context.Background(), newSidecarClient(dial), "http://169.254.170.2/role/app", "tok")
	if err != nil {
		t.Fatalf("fetchCreds: %v", err)
	}
	if pc.AccessKeyID != "ASIAEXAMPLE000000001" {
		t.Fatalf("credentials %+v", pc)
	}
	if proxied.Load() != 0 || len(dialed) != 1 || dialed[0] != "169.254.170.2:80" {
		t.Fatalf("proxy saw %d requests; dialed %v (want the sidecar itself, once)", proxied.Load(), dialed)
	}
}

// TestExecBypassesProxy: the command's SDK gets the sidecar's host in
// NO_PROXY, and both spellings carry the same list: the union of what the
// user had in either, plus the host.
func TestExecBypassesProxy(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(`listen: ["169.254.170.2:80"]
roles: [{name: app}]
clients: [{name: c, match: {uids: [0]}, roles: [app]}]
`), 0o644)
	t.Setenv("NO_PROXY", "corp.example")
	t.Setenv("no_proxy", "lab.example,corp.example")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:9")
	var out, errb strings.Builder
	err := run(context.Background(), []string{"exec", "--config", cfgPath, "--role", "app", "--", "sh", "-c", `echo "$NO_PROXY|$no_proxy"`}, &out, &errb)
	if err != nil {
		t.Fatalf("exec: %v %s", err, errb.String())
	}
	if got, want := out.String(), "corp.example,lab.example,169.254.170.2|corp.example,lab.example,169.254.170.2\n"; got != want {
		t.Fatalf("child's NO_PROXY|no_proxy = %q, want %q", got, want)
	}
}
