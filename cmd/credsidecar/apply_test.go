package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/metrics"
)

// builtDaemon is serve's first three steps (load, bind, build) on yml,
// without run: the test calls apply itself, synchronously.
func builtDaemon(t *testing.T, yml string) *daemon {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &daemon{log: zaptest.NewLogger(t), metrics: metrics.New()}
	t.Cleanup(d.close)
	if err := d.load(path); err != nil {
		t.Fatal(err)
	}
	if err := d.bind(); err != nil {
		t.Fatal(err)
	}
	if err := d.build(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

func loadYAML(t *testing.T, yml string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func reloads(t *testing.T, d *daemon) string {
	t.Helper()
	rr := httptest.NewRecorder()
	d.adminHandler().ServeHTTP(rr, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var out []string
	for _, l := range strings.Split(rr.Body.String(), "\n") {
		if strings.HasPrefix(l, "credsidecar_config_reloads_total{") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "; ")
}

// TestApplyReconciles: a reload applies what it can and keeps the running
// values of the keys that need a restart (the listeners stay bound to the
// running addresses); an sts.mode change, or a signing key the issuer
// refuses, applies nothing; the configs handed in are not modified.
func TestApplyReconciles(t *testing.T) {
	d := builtDaemon(t, serveYAML("us-east-1", false))
	running := d.cfg
	listen := append([]string(nil), running.Listen...)

	moved := loadYAML(t, strings.Replace(serveYAML("eu-west-3", false), `listen: ["127.0.0.1:0"]`, `listen: ["127.0.0.1:1"]`, 1))
	d.apply(moved)
	if got := d.agent.Config(); got.Region != "eu-west-3" || strings.Join(got.Listen, ",") != strings.Join(listen, ",") {
		t.Fatalf("in force: region %s, listen %v; want eu-west-3 on %v", got.Region, got.Listen, listen)
	}
	if moved.Listen[0] != "127.0.0.1:1" {
		t.Fatal("apply modified the new config in place")
	}
	if m := reloads(t, d); m != `credsidecar_config_reloads_total{result="success"} 1` {
		t.Fatalf("reload metrics: %s", m)
	}

	inForce := d.cfg
	d.apply(loadYAML(t, `listen: ["127.0.0.1:0"]
sts: {mode: aws}
roles: [{name: app, arn: "arn:aws:iam::000000000000:role/app"}]
clients: [{name: loader, match: {token: loader-token}, roles: [app]}]
`))
	if d.cfg != inForce || d.agent.Config() != inForce {
		t.Fatal("an sts.mode change was applied")
	}

	key := filepath.Join(t.TempDir(), "short.key")
	os.WriteFile(key, []byte("short"), 0o600)
	d.apply(loadYAML(t, strings.Replace(serveYAML("ap-south-2", false), `local: {listen: "127.0.0.1:0"}`, `local: {listen: "127.0.0.1:0", signing_key_file: `+key+`}`, 1)))
	if d.cfg != inForce || d.agent.Config() != inForce {
		t.Fatal("a config the issuer refused was applied")
	}
	if m := reloads(t, d); m != `credsidecar_config_reloads_total{result="failure"} 2; credsidecar_config_reloads_total{result="success"} 1` {
		t.Fatalf("reload metrics: %s", m)
	}
}

// TestServeFailedStartReleasesEverything: when building fails after every
// listener is bound (here: the audit log cannot be opened), serve returns
// having released the listeners, the config watch and every goroutine.
func TestServeFailedStartReleasesEverything(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	var addrs []string
	for range 3 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, l.Addr().String())
		l.Close()
	}
	yml := `listen: ["` + addrs[0] + `"]
admin_listen: "` + addrs[1] + `"
audit_log: /nonexistent/dir/audit.jsonl
sts: {mode: local, local: {listen: "` + addrs[2] + `"}}
roles: [{name: app}]
clients: [{name: c, match: {token: t}, roles: [app]}]
`
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, []byte(yml), 0o600)
	err := serve(context.Background(), path, zaptest.NewLogger(t), serveHooks{ready: func([]string, string, string) { t.Error("ready after a failed start") }})
	if err == nil || !strings.Contains(err.Error(), "audit log") {
		t.Fatalf("serve: %v", err)
	}
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s still bound after the failed start: %v", a, err)
		}
		l.Close()
	}
}

// TestApplyIsAllOrNothing: a reload that one component refuses after
// another could have taken it (here the identity providers refuse a JWKS
// file that does not parse, after the local STS could have rebuilt its
// account with a new role) changes nothing anywhere: the local STS keeps
// the running account, the agent the running config.
func TestApplyIsAllOrNothing(t *testing.T) {
	d := builtDaemon(t, serveYAML("us-east-1", false))
	inForce, acct := d.cfg, d.issuer.Account()
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys": "not a key set"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	next := serveYAML("us-east-1", false) + `  - {name: fresh, match: {token: fresh-token}, roles: [added]}
identity_providers:
  - {name: cluster, issuer: "https://k8s.test", audiences: [credsidecar], jwks_file: ` + jwks + `}
`
	next = strings.Replace(next, "  - {name: other, duration: 1h}\n", "  - {name: other, duration: 1h}\n  - {name: added, duration: 1h}\n", 1)
	cfg := loadYAML(t, next)
	added, _ := cfg.RoleByName("added")
	if _, ok := d.issuer.Account().Role(added.ARN); ok {
		t.Fatal("the running account already has the new role")
	}
	d.apply(cfg)
	if d.cfg != inForce || d.agent.Config() != inForce {
		t.Fatal("a config the identity providers refused was applied")
	}
	if d.issuer.Account() != acct {
		t.Fatal("the local STS took the account of a config the identity providers refused")
	}
	if m := reloads(t, d); m != `credsidecar_config_reloads_total{result="failure"} 1` {
		t.Fatalf("reload metrics: %s", m)
	}

	// The same config with a good key set applies everywhere.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k", Use: "sig"}}})
	os.WriteFile(jwks, good, 0o600)
	d.apply(loadYAML(t, next))
	if d.cfg == inForce || d.issuer.Account() == acct {
		t.Fatal("a valid config was not applied")
	}
	if _, ok := d.issuer.Account().Role(added.ARN); !ok {
		t.Fatal("the applied account lacks the new role")
	}
}
