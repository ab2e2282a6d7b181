package jwtauth

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/configtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func cfgYAML(provider string) string {
	return `
roles: [{name: app}]
clients:
  - name: pods
    match: {jwt: {provider: cluster}}
    roles: [app]
identity_providers:
  - name: cluster
    issuer: ` + testIssuer + `
    audiences: [credsidecar]
` + provider
}

func newAuth(t *testing.T, clk clock.Clock, yml string, opts ...func(*Options)) *Authenticator {
	t.Helper()
	o := Options{Clock: clk, Logger: zaptest.NewLogger(t)}
	for _, f := range opts {
		f(&o)
	}
	a := New(o)
	t.Cleanup(a.Close)
	if err := a.Apply(configtest.Parse(t, yml)); err != nil {
		t.Fatal(err)
	}
	return a
}

func writeJWKS(t *testing.T, ks ...testKey) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(p, jwks(t, ks...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAuthenticatorFile(t *testing.T) {
	clk := clock.NewFake(testNow)
	k := rsaKey(t, "r1")
	a := newAuth(t, clk, cfgYAML("    jwks_file: "+writeJWKS(t, k)+"\n"))
	tok := sign(t, k, claims(), nil)
	id, err := a.Verify(context.Background(), tok, src("src"))
	if err != nil {
		t.Fatal(err)
	}
	if id.Provider != "cluster" || id.Subject != "system:serviceaccount:prod:billing" {
		t.Fatalf("identity = %+v", id)
	}
	again, err := a.Verify(context.Background(), tok, src("src"))
	if err != nil || again != id {
		t.Fatalf("second verify = %p, %v; want the cached %p", again, err, id)
	}
	// Past exp (and the leeway) the cached token is gone and refused.
	clk.Advance(11 * time.Minute)
	if _, err := a.Verify(context.Background(), tok, src("src")); ReasonOf(err) != ReasonExpired {
		t.Fatalf("after exp: %v", err)
	}
}

func TestAuthenticatorUnknownIssuer(t *testing.T) {
	k := rsaKey(t, "r1")
	a := newAuth(t, clock.NewFake(testNow), cfgYAML("    jwks_file: "+writeJWKS(t, k)+"\n"))
	c := claims()
	c["iss"] = "https://other.test"
	if _, err := a.Verify(context.Background(), sign(t, k, c, nil), src("src")); ReasonOf(err) != ReasonIssuer {
		t.Fatalf("err = %v", err)
	}
}

func TestAuthenticatorFileRotation(t *testing.T) {
	// A reload with a new jwks_file content keeps tokens of keys still in
	// it and drops those whose key left.
	clk := clock.NewFake(testNow)
	k1, k2 := rsaKey(t, "r1"), ecKey(t, "e1")
	path := writeJWKS(t, k1, k2)
	a := newAuth(t, clk, cfgYAML("    jwks_file: "+path+"\n"))
	t1, t2 := sign(t, k1, claims(), nil), sign(t, k2, claims(), nil)
	for _, tok := range []string{t1, t2} {
		if _, err := a.Verify(context.Background(), tok, src("src")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, jwks(t, k2), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(configtest.Parse(t, cfgYAML("    jwks_file: "+path+"\n"))); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(context.Background(), t1, src("src")); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("token of the removed key: %v", err)
	}
	if _, err := a.Verify(context.Background(), t2, src("src")); err != nil {
		t.Fatalf("token of the kept key: %v", err)
	}
}

func TestAuthenticatorNode(t *testing.T) {
	k := rsaKey(t, "r1")
	prov := "    jwks_file: " + writeJWKS(t, k) + "\n    kubernetes: {node_name: node-b}\n"
	a := newAuth(t, clock.NewFake(testNow), cfgYAML(prov))
	if _, err := a.Verify(context.Background(), sign(t, k, claims(), nil), src("src")); ReasonOf(err) != ReasonNode {
		t.Fatalf("token of node-a on node-b: %v", err)
	}
	c := claims()
	c["kubernetes.io"].(map[string]any)["node"] = map[string]any{"name": "node-b"}
	if _, err := a.Verify(context.Background(), sign(t, k, c, nil), src("src")); err != nil {
		t.Fatalf("token of node-b: %v", err)
	}
}

// jwksServer serves a JWKS whose document and behaviour a test scripts.
type jwksServer struct {
	*httptest.Server
	mu    sync.Mutex
	doc   []byte
	fail  bool
	hits  atomic.Int32
	auths []string
}

func newJWKSServer(t *testing.T, ks ...testKey) *jwksServer {
	s := &jwksServer{doc: jwks(t, ks...)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		doc, failing := s.doc, s.fail
		s.auths = append(s.auths, r.Header.Get("Authorization"))
		s.mu.Unlock()
		if failing {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(doc []byte, failing bool) {
	s.mu.Lock()
	s.doc, s.fail = doc, failing
	s.mu.Unlock()
}

func TestAuthenticatorURLRotation(t *testing.T) {
	clk := clock.NewFake(testNow)
	k1, k2 := rsaKey(t, "r1"), ecKey(t, "e1")
	srv := newJWKSServer(t, k1)
	a := newAuth(t, clk, cfgYAML("    jwks_url: "+srv.URL+"/jwks\n"))
	ctx := context.Background()
	if _, err := a.Verify(ctx, sign(t, k1, claims(), nil), src("src")); err != nil {
		t.Fatal(err)
	}
	if n := srv.hits.Load(); n != 1 {
		t.Fatalf("%d fetches for the first token, want 1", n)
	}
	// The issuer rotates to k2: the unknown kid triggers one fetch...
	srv.set(jwks(t, k1, k2), false)
	clk.Advance(2 * time.Minute)
	c := claims()
	c["iat"], c["nbf"] = clk.Now().Unix(), clk.Now().Unix()
	t2 := sign(t, k2, c, nil)
	if _, err := a.Verify(ctx, t2, src("src")); err != nil {
		t.Fatal(err)
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after the rotation, want 2", n)
	}
	// ...and unknown kids within the minute after it trigger none.
	for i := 0; i < 5; i++ {
		_, err := a.Verify(ctx, sign(t, rsaKey(t, fmt.Sprint("bogus", i)), c, nil), src("src"))
		if ReasonOf(err) != ReasonUnknownKey {
			t.Fatalf("bogus kid: %v", err)
		}
	}
	if n := srv.hits.Load(); n != 2 {
		t.Fatalf("%d fetches after bogus kids, want still 2", n)
	}
}

func TestAuthenticatorURLDownKeepsLastGood(t *testing.T) {
	clk := clock.NewFake(testNow)
	k1 := rsaKey(t, "r1")
	srv := newJWKSServer(t, k1)
	a := newAuth(t, clk, cfgYAML("    jwks_url: "+srv.URL+"\n"))
	ctx := context.Background()
	if _, err := a.Verify(ctx, sign(t, k1, claims(), nil), src("src")); err != nil {
		t.Fatal(err)
	}
	srv.set(nil, true)
	p := (*a.provs.Load())[testIssuer]
	a.refresh(ctx, p)
	if p.lastErr() == nil || a.Keys(testIssuer).Len() != 1 {
		t.Fatalf("after a failed fetch: err %v, %d keys (want the last good set)", p.lastErr(), a.Keys(testIssuer).Len())
	}
	// A new token of the known key still verifies.
	c := claims()
	c["jti"] = "new"
	if _, err := a.Verify(ctx, sign(t, k1, c, nil), src("src")); err != nil {
		t.Fatal(err)
	}
}

func TestAuthenticatorURLBadAnswers(t *testing.T) {
	k := rsaKey(t, "r1")
	big := `{"keys":[` + strings.Repeat(" ", MaxJWKSSize) + `]}`
	tests := []struct {
		name    string
		handler http.HandlerFunc
		msg     string
	}{
		{"down", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusInternalServerError) }, "status 500"},
		{"garbage", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>")) }, "not a JSON object"},
		{"oversized", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(big)) }, "larger than"},
		{"redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) }, "redirects are not followed"},
		{"slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "Timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			a := newAuth(t, clock.NewFake(testNow), cfgYAML("    jwks_url: "+srv.URL+"\n"), func(o *Options) { o.FetchTimeout = 200 * time.Millisecond })
			_, err := a.Verify(context.Background(), sign(t, k, claims(), nil), src("src"))
			if ReasonOf(err) != ReasonUnavailable {
				t.Fatalf("err = %v, want unavailable", err)
			}
			if le := (*a.provs.Load())[testIssuer].lastErr(); le == nil || !strings.Contains(le.Error(), tc.msg) {
				t.Fatalf("fetch error %v, want %q", le, tc.msg)
			}
		})
	}
}

func TestAuthenticatorBearerReread(t *testing.T) {
	k := rsaKey(t, "r1")
	srv := newJWKSServer(t, k)
	bearer := filepath.Join(t.TempDir(), "token")
	os.WriteFile(bearer, []byte("first\n"), 0o600)
	clk := clock.NewFake(testNow)
	a := newAuth(t, clk, cfgYAML("    kubernetes: {api_url: "+srv.URL+", bearer_token_file: "+bearer+"}\n"))
	if _, err := a.Verify(context.Background(), sign(t, k, claims(), nil), src("src")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(bearer, []byte("second"), 0o600)
	a.refresh(context.Background(), (*a.provs.Load())[testIssuer])
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.auths) != 2 || srv.auths[0] != "Bearer first" || srv.auths[1] != "Bearer second" {
		t.Fatalf("Authorization headers %q", srv.auths)
	}
}

// TestBearerOnlyToAPIServer: the sidecar's own service-account token goes
// with a JWKS fetch only to the API server (its discovery URL, or a
// jwks_url on api_url's origin), or to a jwks_url when no api_url names
// another server; a jwks_url elsewhere, a public issuer's, never sees it.
func TestBearerOnlyToAPIServer(t *testing.T) {
	k := rsaKey(t, "r1")
	bearer := filepath.Join(t.TempDir(), "token")
	os.WriteFile(bearer, []byte("sa-token"), 0o600)
	elsewhere := httptest.NewServer(http.NotFoundHandler()) // api_url's server, not the JWKS's
	defer elsewhere.Close()
	for _, tc := range []struct {
		name string
		yml  func(jwks string) string
		want string
	}{
		{"api_url discovery", func(u string) string {
			return "    kubernetes: {api_url: " + u + ", bearer_token_file: " + bearer + "}\n"
		}, "Bearer sa-token"},
		{"jwks_url on api_url's origin", func(u string) string {
			return "    jwks_url: " + u + "/openid/v1/jwks\n    kubernetes: {api_url: " + u + "/, bearer_token_file: " + bearer + "}\n"
		}, "Bearer sa-token"},
		{"jwks_url, no api_url", func(u string) string {
			return "    jwks_url: " + u + "/keys\n    kubernetes: {bearer_token_file: " + bearer + "}\n"
		}, "Bearer sa-token"},
		{"jwks_url on another server", func(u string) string {
			return "    jwks_url: " + u + "/keys\n    kubernetes: {api_url: " + elsewhere.URL + ", bearer_token_file: " + bearer + "}\n"
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSServer(t, k)
			a := newAuth(t, clock.NewFake(testNow), cfgYAML(tc.yml(srv.URL)))
			if _, err := a.Verify(context.Background(), sign(t, k, claims(), nil), src("src")); err != nil {
				t.Fatal(err)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.auths) != 1 || srv.auths[0] != tc.want {
				t.Fatalf("Authorization headers %q, want [%q]", srv.auths, tc.want)
			}
		})
	}
}

// reviewServer is a fake API server: JWKS at /openid/v1/jwks, TokenReview
// answering from a set of accepted tokens.
type reviewServer struct {
	*httptest.Server
	mu       sync.Mutex
	accepted map[string]bool
	down     bool
	reviews  atomic.Int32
}

func newReviewServer(t *testing.T, ks ...testKey) *reviewServer {
	s := &reviewServer{accepted: map[string]bool{}}
	doc := jwks(t, ks...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/openid/v1/jwks":
			w.Write(doc)
		case "/apis/authentication.k8s.io/v1/tokenreviews":
			s.reviews.Add(1)
			var tr tokenReview
			json.NewDecoder(r.Body).Decode(&tr)
			s.mu.Lock()
			ok := s.accepted[tr.Spec.Token]
			s.mu.Unlock()
			tr.Status.Authenticated = ok
			if ok {
				tr.Status.User.Username = "system:serviceaccount:prod:billing"
				tr.Status.Audiences = tr.Spec.Audiences
			} else {
				tr.Status.Error = "pod not found"
			}
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(tr)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *reviewServer) accept(tok string, ok bool) {
	s.mu.Lock()
	s.accepted[tok] = ok
	s.mu.Unlock()
}

func (s *reviewServer) setDown(d bool) {
	s.mu.Lock()
	s.down = d
	s.mu.Unlock()
}

func TestAuthenticatorTokenReview(t *testing.T) {
	clk := clock.NewFake(testNow)
	k := rsaKey(t, "r1")
	srv := newReviewServer(t, k)
	a := newAuth(t, clk, cfgYAML("    kubernetes: {api_url: "+srv.URL+", token_review: true}\n"))
	ctx := context.Background()
	tok := sign(t, k, claims(), nil)
	srv.accept(tok, true)
	if _, err := a.Verify(ctx, tok, src("src")); err != nil {
		t.Fatal(err)
	}
	// Within the review TTL: no new review.
	clk.Advance(29 * time.Second)
	if _, err := a.Verify(ctx, tok, src("src")); err != nil || srv.reviews.Load() != 1 {
		t.Fatalf("within the TTL: %v, %d reviews", err, srv.reviews.Load())
	}
	// The API server goes away: the verified token is kept.
	srv.setDown(true)
	clk.Advance(2 * time.Second)
	if _, err := a.Verify(ctx, tok, src("src")); err != nil {
		t.Fatalf("API server down, already verified: %v", err)
	}
	// A new token fails closed meanwhile.
	c := claims()
	c["jti"] = "other"
	other := sign(t, k, c, nil)
	srv.accept(other, true)
	if _, err := a.Verify(ctx, other, src("src")); ReasonOf(err) != ReasonUnavailable {
		t.Fatalf("new token with the API server down: %v", err)
	}
	// The pod is deleted: once the TTL passes, the token stops working.
	srv.setDown(false)
	srv.accept(tok, false)
	clk.Advance(DefaultReviewTTL)
	if _, err := a.Verify(ctx, tok, src("src")); ReasonOf(err) != ReasonReview {
		t.Fatalf("deleted pod's token: %v", err)
	}
	if _, err := a.Verify(ctx, tok, src("src")); ReasonOf(err) != ReasonReview {
		t.Fatalf("deleted pod's token, again: %v", err)
	}
}

func TestAuthenticatorBudget(t *testing.T) {
	// A flood of bad tokens from one source is refused before any
	// signature check once its budget is spent; another source and
	// cached tokens are unaffected.
	clk := clock.NewFake(testNow)
	k := rsaKey(t, "r1")
	a := newAuth(t, clk, cfgYAML("    jwks_file: "+writeJWKS(t, k)+"\n"), func(o *Options) { o.SourceRate = 5; o.GlobalRate = 100 })
	ctx := context.Background()
	good := sign(t, k, claims(), nil)
	if _, err := a.Verify(ctx, good, src("flood")); err != nil {
		t.Fatal(err)
	}
	bad := sign(t, rsaKeyB(t, "r1"), claims(), nil)
	var busy, checked int
	for i := 0; i < 100; i++ {
		switch ReasonOf(func() error { _, err := a.Verify(ctx, bad, src("flood")); return err }()) {
		case ReasonBusy:
			busy++
		case ReasonSignature:
			checked++
		}
	}
	if checked > 6 || busy < 94 {
		t.Fatalf("%d checked, %d refused as busy; want at most the burst checked", checked, busy)
	}
	if _, err := a.Verify(ctx, good, src("flood")); err != nil {
		t.Fatalf("cached token during the flood: %v", err)
	}
	c := claims()
	c["jti"] = "x"
	if _, err := a.Verify(ctx, sign(t, k, c, nil), src("other-source")); err != nil {
		t.Fatalf("another source: %v", err)
	}
	clk.Advance(time.Second)
	if _, err := a.Verify(ctx, bad, src("flood")); ReasonOf(err) != ReasonSignature {
		t.Fatalf("after a second the budget refills: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct{ name, provider, msg string }{
		{"no issuer", "  - name: x\n    audiences: [a]\n    jwks_file: /x\n", "issuer is required"},
		{"no audiences", "  - name: x\n    issuer: https://i\n    jwks_file: /x\n", "audiences must list"},
		{"no keys", "  - name: x\n    issuer: https://i\n    audiences: [a]\n", "needs jwks_file, jwks_url or kubernetes.api_url"},
		{"http jwks", "  - name: x\n    issuer: https://i\n    audiences: [a]\n    jwks_url: http://example.test/jwks\n", "plain http only to a loopback"},
		{"ftp jwks", "  - name: x\n    issuer: https://i\n    audiences: [a]\n    jwks_url: ftp://example.test/jwks\n", "scheme must be https"},
		{"both", "  - name: x\n    issuer: https://i\n    audiences: [a]\n    jwks_url: https://a/\n    jwks_file: /x\n", "exclude each other"},
		{"review without api", "  - name: x\n    issuer: https://i\n    audiences: [a]\n    jwks_file: /x\n    kubernetes: {token_review: true}\n", "token_review needs kubernetes.api_url"},
		{"lifetime", "  - name: x\n    issuer: https://i\n    audiences: [a]\n    jwks_file: /x\n    max_token_lifetime: 30s\n", "outside 1m..168h"},
		{"unknown key", "  - name: x\n    issuer: https://i\n    audiences: [a]\n    jwks_file: /x\n    jwks: y\n", "jwks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			yml := "roles: [{name: app}]\nclients: [{name: c, match: {jwt: {provider: x}}, roles: [app]}]\nidentity_providers:\n" + tc.provider
			_, err := config.Parse([]byte(yml))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
		})
	}
	for _, tc := range []struct{ name, match, msg string }{
		{"unknown provider", "{jwt: {provider: nope}}", `"nope" is not an identity_providers entry`},
		{"token and jwt", "{token: abc, jwt: {provider: x}}", "exclude each other"},
		{"claims leaf not a string", "{jwt: {provider: x, claims: {a: [1]}}}", "must be a glob string or a mapping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			yml := "roles: [{name: app}]\nclients: [{name: c, match: " + tc.match + ", roles: [app]}]\nidentity_providers: [{name: x, issuer: 'https://i', audiences: [a], jwks_file: /x}]\n"
			_, err := config.Parse([]byte(yml))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
		})
	}
}

func TestAuthenticatorURLPeriodicRefresh(t *testing.T) {
	// A jwks_url is re-read once RefreshInterval has passed (in the
	// background, kicked by a request); a cached token whose key left the
	// set is dropped.
	clk := clock.NewFake(testNow)
	k1, k2 := rsaKey(t, "r1"), ecKey(t, "e1")
	srv := newJWKSServer(t, k1, k2)
	a := newAuth(t, clk, cfgYAML("    jwks_url: "+srv.URL+"\n"))
	ctx := context.Background()
	tok := sign(t, k1, claims(), nil)
	if _, err := a.Verify(ctx, tok, src("s")); err != nil {
		t.Fatal(err)
	}
	srv.set(jwks(t, k2), false)
	clk.Advance(DefaultRefreshInterval - time.Second)
	if _, err := a.Verify(ctx, tok, src("s")); err != nil || srv.hits.Load() != 1 {
		t.Fatalf("before the interval: %v, %d fetches", err, srv.hits.Load())
	}
	clk.Advance(time.Second)
	// This hit is still served from the cache, and kicks the refresh.
	if _, err := a.Verify(ctx, tok, src("s")); err != nil {
		t.Fatal(err)
	}
	a.wg.Wait() // the background refresh
	if srv.hits.Load() != 2 {
		t.Fatalf("%d fetches, want 2", srv.hits.Load())
	}
	if _, err := a.Verify(ctx, tok, src("s")); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("token of the key that left the set: %v", err)
	}
}

func TestAuthenticatorRejectedApplyChangesNoKeys(t *testing.T) {
	// A reload whose second provider fails must not have swapped the
	// first provider's new key file in: a bad config changes nothing.
	clk := clock.NewFake(testNow)
	k1, k2 := rsaKey(t, "r1"), ecKey(t, "e1")
	path := writeJWKS(t, k1)
	a := newAuth(t, clk, cfgYAML("    jwks_file: "+path+"\n"))
	t1 := sign(t, k1, claims(), nil)
	if _, err := a.Verify(context.Background(), t1, src("src")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, jwks(t, k2), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "garbage.json")
	if err := os.WriteFile(bad, []byte("{not a key set"), 0o600); err != nil {
		t.Fatal(err)
	}
	second := "  - name: other\n    issuer: https://other.example.test\n    audiences: [credsidecar]\n    jwks_file: " + bad + "\n"
	if err := a.Apply(configtest.Parse(t, cfgYAML("    jwks_file: "+path+"\n"+second))); err == nil {
		t.Fatal("a provider with a garbage jwks_file was accepted")
	}
	a.Forget(t1) // verify t1 against the keys, not the cache
	if _, err := a.Verify(context.Background(), t1, src("src")); err != nil {
		t.Fatalf("after a rejected reload, the running key set changed: %v", err)
	}
}
