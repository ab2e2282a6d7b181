package imds

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/jwtauth"
	"github.com/credsidecar/credsidecar/metrics"
)

const jwtIssuer = "https://kubernetes.default.svc.cluster.local"

// jwtYAML: service account prod:a gets role-a, prod:b role-b; the role's
// tags name the namespace and service account.
const jwtYAML = `
sts: {mode: local}
roles:
  - name: role-a
    tags:
      kubernetes-namespace: '{{index .Claims "kubernetes.io" "namespace"}}'
      kubernetes-service-account: '{{index .Claims "kubernetes.io" "serviceaccount" "name"}}'
    trust_policy: {Version: "2012-10-17", Statement: [{Effect: Allow, Principal: {AWS: "arn:aws:iam::000000000000:user/credsidecar"}, Action: ["sts:AssumeRole", "sts:TagSession"]}]}
  - {name: role-b}
clients:
  - {name: a, match: {jwt: {provider: cluster, subject: "system:serviceaccount:prod:a"}}, roles: [role-a]}
  - {name: b, match: {jwt: {provider: cluster, subject: "system:serviceaccount:prod:b"}}, roles: [role-b]}
identity_providers:
  - {name: cluster, issuer: "` + jwtIssuer + `", audiences: [credsidecar], jwks_file: %s}
`

type jwtSigner struct {
	t    testing.TB
	key  *ecdsa.PrivateKey
	path string
}

func newJWTSigner(t testing.TB) *jwtSigner {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "k1", Use: "sig"}}})
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &jwtSigner{t: t, key: k, path: path}
}

func (s *jwtSigner) token(sa, aud, pod string) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: s.key}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	if err != nil {
		s.t.Fatal(err)
	}
	now := time.Now()
	tok, err := jwt.Signed(signer).Claims(map[string]any{
		"iss": jwtIssuer, "sub": "system:serviceaccount:prod:" + sa, "aud": []string{aud},
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"kubernetes.io": map[string]any{"namespace": "prod", "serviceaccount": map[string]any{"name": sa}, "pod": map[string]any{"name": pod}},
	}).Serialize()
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

func startJWTFixture(t *testing.T, opts jwtauth.Options) (*fixture, *jwtSigner) {
	return startJWTFixtureWith(t, opts, fixtureOpts{})
}

func startJWTFixtureWith(t *testing.T, opts jwtauth.Options, fo fixtureOpts) (*fixture, *jwtSigner) {
	s := newJWTSigner(t)
	yml := strings.Replace(jwtYAML, "%s", s.path, 1)
	opts.Logger = zaptest.NewLogger(t)
	auth := jwtauth.New(opts)
	t.Cleanup(auth.Close)
	if err := auth.Apply(parseConfig(t, yml)); err != nil {
		t.Fatal(err)
	}
	fo.jwt = auth
	return startFixture(t, yml, fo), s
}

// TestJWTSubjectInAudit: a vend to a caller identified by its JWT names
// the token's subject in the audit record (the token itself never).
func TestJWTSubjectInAudit(t *testing.T) {
	rec := &recAuditor{}
	f, s := startJWTFixtureWith(t, jwtauth.Options{}, fixtureOpts{audit: rec})
	c := newClient(t, "127.0.0.1")
	tok := s.token("a", "credsidecar", "pod-1")
	if r := f.call(t, c, "GET", "/creds", "", http.Header{"Authorization": {tok}}); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	got, n := rec.last()
	if n == 0 || got.Caller.Subject != "system:serviceaccount:prod:a" || !got.Caller.Token {
		t.Fatalf("audit record %+v", got)
	}
}

func TestJWTCredentials(t *testing.T) {
	f, s := startJWTFixture(t, jwtauth.Options{})
	c := newClient(t, "127.0.0.1")
	auth := func(tok string) http.Header { return http.Header{"Authorization": {tok}} }
	tokA := s.token("a", "credsidecar", "pod-1")

	r := f.call(t, c, "GET", "/creds", "", auth(tokA))
	if r.status != 200 {
		t.Fatalf("service account a: %d %s", r.status, r.body)
	}
	var creds struct{ RoleArn, AccessKeyId string }
	json.Unmarshal(r.body, &creds)
	if !strings.HasSuffix(creds.RoleArn, ":role/role-a") {
		t.Fatalf("role %q", creds.RoleArn)
	}
	tests := []struct {
		name   string
		path   string
		hdr    http.Header
		status int
		code   string
	}{
		{"a asks for its role by name", "/role/role-a", auth(tokA), 200, ""},
		{"b asks for a's role", "/role/role-a", auth(s.token("b", "credsidecar", "pod-2")), 404, "NotFound"},
		{"b gets its own", "/role/role-b", auth(s.token("b", "credsidecar", "pod-2")), 200, ""},
		{"no token", "/creds", nil, 403, "AccessDenied"},
		{"token for another audience", "/creds", auth(s.token("a", "sts.amazonaws.com", "pod-1")), 401, "Unauthorized"},
		{"unknown service account", "/creds", auth(s.token("c", "credsidecar", "pod-3")), 401, "Unauthorized"},
		{"garbage", "/creds", auth("not.a.jwt"), 401, "Unauthorized"},
		{"alg none", "/creds", auth("eyJhbGciOiJub25lIn0." + strings.Split(tokA, ".")[1] + "."), 401, "Unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(t, c, "GET", tc.path, "", tc.hdr)
			if tc.status == 200 {
				if r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
				return
			}
			checkError(t, r, tc.status, tc.code)
		})
	}
}

func TestJWTKeepAliveNotReverified(t *testing.T) {
	// With a budget of one new token per second per source, a keep-alive
	// caller's requests after the first are cache hits: none is refused.
	f, s := startJWTFixture(t, jwtauth.Options{SourceRate: 1, GlobalRate: 1})
	c := newClient(t, "127.0.0.1")
	hdr := http.Header{"Authorization": {s.token("a", "credsidecar", "pod-1")}}
	for i := 0; i < 50; i++ {
		if r := f.call(t, c, "GET", "/creds", "", hdr); r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	// New tokens beyond the budget are refused before verification (429).
	var busy int
	for i := 0; i < 5; i++ {
		r := f.call(t, c, "GET", "/creds", "", http.Header{"Authorization": {s.token("a", "credsidecar", "pod-x"+string(rune('a'+i)))}})
		if r.status == http.StatusTooManyRequests {
			busy++
		}
	}
	if busy < 4 {
		t.Fatalf("%d of 5 new tokens refused, want at least 4", busy)
	}
}

// BenchmarkCachedJWTCredentials is BenchmarkCachedIMDSCredentials for an
// ECS caller presenting a projected service-account token: the JWT is
// verified once, then each request costs a digest, a cache lookup, the
// jwt match and the memoized session (compare with
// BenchmarkCachedECSTokenCredentials, a static token client). These ECS
// benchmarks record real metrics, as BenchmarkCachedIMDSCredentials does
// (the test fake's fmt.Sprintf was two of their allocations).
func BenchmarkCachedJWTCredentials(b *testing.B) {
	s := newJWTSigner(b)
	yml := strings.Replace(jwtYAML, "%s", s.path, 1)
	auth := jwtauth.New(jwtauth.Options{})
	defer auth.Close()
	if err := auth.Apply(parseConfig(b, yml)); err != nil {
		b.Fatal(err)
	}
	f := newFixture(b, yml, fixtureOpts{jwt: auth, metrics: metrics.New()})
	benchECS(b, f, s.token("a", "credsidecar", "pod-1"), ecsRolePathFor("role-a"))
}

// BenchmarkCachedJWTMixedCredentials is BenchmarkCachedJWTCredentials
// in a trust config that also has a static token client: the agent looks
// every bearer token up by its SHA-256 first, so a JWT caller then pays
// that digest too (as static token callers do).
func BenchmarkCachedJWTMixedCredentials(b *testing.B) {
	s := newJWTSigner(b)
	yml := strings.Replace(jwtYAML, "%s", s.path, 1)
	yml = strings.Replace(yml, "clients:\n", "clients:\n  - {name: static, match: {token: static-token}, roles: [role-b]}\n", 1)
	auth := jwtauth.New(jwtauth.Options{})
	defer auth.Close()
	if err := auth.Apply(parseConfig(b, yml)); err != nil {
		b.Fatal(err)
	}
	f := newFixture(b, yml, fixtureOpts{jwt: auth, metrics: metrics.New()})
	benchECS(b, f, s.token("a", "credsidecar", "pod-1"), ecsRolePathFor("role-a"))
}

// BenchmarkCachedECSTokenCredentials: the same request with a static token.
func BenchmarkCachedECSTokenCredentials(b *testing.B) {
	f := newFixture(b, `
sts: {mode: local}
roles: [{name: role-a}]
clients: [{name: a, match: {token: static-token}, roles: [role-a]}]
`, fixtureOpts{metrics: metrics.New()})
	benchECS(b, f, "static-token", ecsRolePathFor("role-a"))
}

// BenchmarkCachedECSLongTokenCredentials is the bench's static token
// control: a static token as long as a projected service-account token,
// in a config that also has JWT clients (so the request carries a JWT
// getter too).
func BenchmarkCachedECSLongTokenCredentials(b *testing.B) {
	s := newJWTSigner(b)
	static := strings.Repeat("s", len(s.token("a", "credsidecar", "pod-1")))
	yml := strings.Replace(jwtYAML, "%s", s.path, 1)
	yml = strings.Replace(yml, "clients:\n", "clients:\n  - {name: static, match: {token: "+static+"}, roles: [role-b]}\n", 1)
	auth := jwtauth.New(jwtauth.Options{})
	defer auth.Close()
	if err := auth.Apply(parseConfig(b, yml)); err != nil {
		b.Fatal(err)
	}
	f := newFixture(b, yml, fixtureOpts{jwt: auth, metrics: metrics.New()})
	benchECS(b, f, static, ecsRolePathFor("role-b"))
}

// BenchmarkNewJWT is the first request of a new token: parse, ES256
// signature check, claims, cache insert (jwtauth alone).
func BenchmarkNewJWT(b *testing.B) {
	s := newJWTSigner(b)
	yml := strings.Replace(jwtYAML, "%s", s.path, 1)
	auth := jwtauth.New(jwtauth.Options{SourceRate: 1e9, GlobalRate: 1e9, CacheSize: 1})
	defer auth.Close()
	if err := auth.Apply(parseConfig(b, yml)); err != nil {
		b.Fatal(err)
	}
	toks := []string{s.token("a", "credsidecar", "p1"), s.token("a", "credsidecar", "p2")}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		// Two tokens alternating in a cache of one: every call verifies.
		if _, err := auth.Verify(context.Background(), toks[i%2], func() string { return "src" }); err != nil {
			b.Fatal(err)
		}
	}
}

func ecsRolePathFor(role string) string { return "/role/" + role }

func benchECS(b *testing.B, f *fixture, token, path string) {
	h := f.srv.Handler()
	ctx := f.srv.ConnContext(context.Background(), benchConn{})
	req := httptest.NewRequest(http.MethodGet, path, nil).WithContext(ctx)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Host = "169.254.170.2"
	req.Header.Set("Authorization", token)
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
