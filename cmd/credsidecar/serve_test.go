package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func serveYAML(region string, withVictim bool) string {
	victim := ""
	if withVictim {
		victim = "  - {name: victim, match: {token: victim-token}, roles: [app]}\n"
	}
	return fmt.Sprintf(`listen: ["127.0.0.1:0"]
admin_listen: "127.0.0.1:0"
region: %s
imds: {tokens: optional}
sts: {mode: local, local: {listen: "127.0.0.1:0"}}
roles:
  - {name: app, duration: 1h}
  - {name: other, duration: 1h}
clients:
  - {name: loader, match: {token: loader-token}, roles: [app, other]}
%s`, region, victim)
}

type running struct {
	base, admin, sts string
	cancel           context.CancelFunc
	done             chan error
}

// startServe runs the real serve command on a config file, bound to
// ephemeral ports on 127.0.0.1.
func startServe(t *testing.T, path string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [3]string, 1)
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- serve(ctx, path, zaptest.NewLogger(t), serveHooks{ready: func(creds []string, admin, sts string) {
			ready <- [3]string{creds[0], admin, sts}
		}})
	}()
	select {
	case a := <-ready:
		r.base, r.admin, r.sts = "http://"+a[0], "http://"+a[1], "http://"+a[2]
	case err := <-r.done:
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not become ready")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	return r
}

func get(t *testing.T, url string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHotReloadUnderLoad edits the config every way editors, mv and the
// kubelet do while a load loop runs against an unchanged role: not one
// request may fail, every valid change applies, the invalid one does not,
// and a revoked client loses access on its next request.
func TestHotReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(serveYAML("us-east-1", true))
	srv := startServe(t, path)

	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body := get(t, srv.base+"/role/app", "Authorization", "loader-token")
				if code == 200 && strings.Contains(body, `"AccessKeyId":"ASIA`) {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", code, body))
				}
			}
		}()
	}
	region := func() string {
		_, body := get(t, srv.base+"/latest/meta-data/placement/region")
		return body
	}
	waitRegion := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for region() != want {
			if time.Now().After(deadline) {
				t.Fatalf("region %q never applied (now %q)", want, region())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	write(serveYAML("eu-west-1", true)) // in place
	waitRegion("eu-west-1")

	tmp := filepath.Join(dir, "config.yaml.tmp") // rename over
	os.WriteFile(tmp, []byte(serveYAML("eu-west-2", true)), 0o644)
	os.Rename(tmp, path)
	waitRegion("eu-west-2")

	os.Remove(path) // delete and recreate
	time.Sleep(30 * time.Millisecond)
	write(serveYAML("eu-west-3", true))
	waitRegion("eu-west-3")

	for i := range 50 { // a burst
		write(serveYAML(fmt.Sprintf("ap-south-%d", i), true))
	}
	waitRegion("ap-south-49")

	write("listen: [\"127.0.0.1:0\"]\nroles: [{name: app, duratoin: 1h}]\n") // invalid
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, m := get(t, srv.admin+"/metrics")
		if strings.Contains(m, `credsidecar_config_reloads_total{result="failure"} 1`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("invalid config not counted as a failed reload")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if r := region(); r != "ap-south-49" {
		t.Fatalf("an invalid config replaced the running one (region %q)", r)
	}
	if code, _ := get(t, srv.base+"/role/app", "Authorization", "victim-token"); code != 200 {
		t.Fatalf("victim before revocation: %d", code)
	}

	write(serveYAML("ap-south-49", false)) // revoke the victim
	deadline = time.Now().Add(5 * time.Second)
	for {
		code, _ := get(t, srv.base+"/role/app", "Authorization", "victim-token")
		if code == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked client still answered %d", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The file flapping between valid and invalid under load.
	for i := range 20 {
		if i%2 == 0 {
			write("roles: [{name: app, duration: bogus}]\n")
		} else {
			write(serveYAML(fmt.Sprintf("flap-%d", i), false))
		}
		time.Sleep(15 * time.Millisecond)
	}
	write(serveYAML("final", false))
	waitRegion("final")
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %v", failed.Load(), ok.Load()+failed.Load(), firstFailure.Load())
	}
	if ok.Load() < 10 {
		t.Fatalf("load loop made only %d requests", ok.Load())
	}
	t.Logf("%d requests, none failed", ok.Load())
}

func TestServeRefusesBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("listen: [\"8.8.8.8:80\"]\n"), 0o644)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", path}, &out, &errb)
	if code := exitCode(err, &errb); code != 1 || !strings.Contains(errb.String(), "line 1") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}

func TestServeLinkLocalNotConfigured(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("listen: [\"169.254.77.77:0\"]\nroles: [{name: app}]\nclients: [{name: c, match: {token: t}, roles: [app]}]\n"), 0o644)
	err := serve(context.Background(), path, zaptest.NewLogger(t), serveHooks{})
	if err == nil || !strings.Contains(err.Error(), "ip addr add 169.254.77.77/32") {
		t.Fatalf("want a hint naming the ip addr add command, got %v", err)
	}
}

func TestAdminEndpoints(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, []byte(serveYAML("us-east-1", false)), 0o644)
	srv := startServe(t, path)
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, srv.admin+p); code != 200 {
			t.Fatalf("%s: %d %s", p, code, body)
		}
	}
	get(t, srv.base+"/role/app", "Authorization", "loader-token")
	_, m := get(t, srv.admin+"/metrics")
	for _, name := range []string{
		"credsidecar_credential_requests_total{code=\"200\",endpoint=\"ecs\"}",
		"credsidecar_sts_requests_total{operation=\"AssumeRole\",result=\"success\"}",
		"credsidecar_cache_entries", "credsidecar_cache_hits_total", "credsidecar_cache_misses_total",
		"credsidecar_refresh_failures_total", "credsidecar_request_duration_seconds_bucket",
		"go_goroutines", "process_resident_memory_bytes",
	} {
		if !strings.Contains(m, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	// Never on the credential listeners.
	if code, _ := get(t, srv.base+"/metrics"); code != 404 {
		t.Errorf("/metrics on the credential listener: %d, want 404", code)
	}
}
