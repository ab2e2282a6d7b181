package imds

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/jwtauth"
)

// countingJWT counts the verifier lookups a server makes: a request
// answered from the connection's memo makes none.
type countingJWT struct {
	*jwtauth.Authenticator
	n atomic.Int32
}

func (c *countingJWT) VerifyLease(ctx context.Context, token string, source func() string) (jwtauth.Lease, error) {
	c.n.Add(1)
	return c.Authenticator.VerifyLease(ctx, token, source)
}

// memoFixture is a server with a JWT verifier on a fake clock, and one
// connection to send requests on.
type memoFixture struct {
	t    *testing.T
	clk  *clock.Fake
	auth *countingJWT
	s    *jwtSigner
	yml  string
	srv  *Server
	h    http.Handler
	ctx  context.Context // the connection's
}

// newMemoFixture serves jwtYAML with the provider's key source replaced
// by keys (the jwks_file line when "").
func newMemoFixture(t *testing.T, keys string) *memoFixture {
	s := newJWTSigner(t)
	if keys == "" {
		keys = "jwks_file: " + s.path
	}
	yml := strings.Replace(jwtYAML, "jwks_file: %s", keys, 1)
	clk := clock.NewFake(time.Now())
	a := jwtauth.New(jwtauth.Options{Clock: clk, Logger: zaptest.NewLogger(t)})
	t.Cleanup(a.Close)
	if err := a.Apply(parseConfig(t, yml)); err != nil {
		t.Fatal(err)
	}
	m := &memoFixture{t: t, clk: clk, auth: &countingJWT{Authenticator: a}, s: s, yml: yml}
	f := newFixture(t, yml, fixtureOpts{jwt: m.auth})
	m.srv, m.h = f.srv, f.srv.Handler()
	m.ctx = f.srv.ConnContext(context.Background(), benchConn{})
	return m
}

// get sends GET path with token on the fixture's connection; it returns
// the status.
func (m *memoFixture) get(path, token string) int {
	m.t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil).WithContext(m.ctx)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Host = "169.254.170.2"
	req.Header.Set("Authorization", token)
	w := &discardWriter{h: http.Header{}}
	m.h.ServeHTTP(w, req)
	return w.status
}

// expect fails the test unless GET path with token answers status after
// lookups verifier lookups in all.
func (m *memoFixture) expect(path, token string, status int, lookups int32) {
	m.t.Helper()
	if got := m.get(path, token); got != status {
		m.t.Fatalf("GET %s: status %d, want %d", path, got, status)
	}
	if n := m.auth.n.Load(); n != lookups {
		m.t.Fatalf("GET %s: %d verifier lookups, want %d", path, n, lookups)
	}
}

func TestJWTConnMemoSameToken(t *testing.T) {
	m := newMemoFixture(t, "")
	tok := m.s.token("a", "credsidecar", "pod-1")
	for range 5 {
		m.expect("/role/role-a", tok, 200, 1)
	}
	// Another connection has its own memo.
	m.ctx = m.srv.ConnContext(context.Background(), benchConn{})
	m.expect("/role/role-a", tok, 200, 2)
	m.expect("/role/role-a", tok, 200, 2)
}

func TestJWTConnMemoDifferentToken(t *testing.T) {
	m := newMemoFixture(t, "")
	a, b := m.s.token("a", "credsidecar", "pod-1"), m.s.token("b", "credsidecar", "pod-2")
	m.expect("/role/role-a", a, 200, 1)
	// Another token on the same connection is verified, and is itself:
	// b may not have a's role.
	m.expect("/role/role-a", b, 404, 2)
	m.expect("/role/role-b", b, 200, 2)
	m.expect("/role/role-a", a, 200, 3)
	// One of the same length that differs in one byte near its end (in
	// the signature) is not the memoized token.
	i, repl := len(a)-10, "A"
	if a[i] == 'A' {
		repl = "B"
	}
	forged := a[:i] + repl + a[i+1:]
	m.expect("/role/role-a", forged, 401, 4)
	// A token that fails verification leaves the memo alone.
	m.expect("/role/role-a", a, 200, 4)
}

func TestJWTConnMemoNotAfterExp(t *testing.T) {
	m := newMemoFixture(t, "")
	tok := m.s.token("a", "credsidecar", "pod-1")
	m.expect("/role/role-a", tok, 200, 1)
	m.clk.Advance(9 * time.Minute)
	m.expect("/role/role-a", tok, 200, 1)
	// Past exp and its leeway the token is refused, memo or not.
	m.clk.Advance(time.Minute + jwtauth.DefaultLeeway + time.Second)
	m.expect("/role/role-a", tok, 401, 2)
	m.expect("/role/role-a", tok, 401, 3)
}

func TestJWTConnMemoDroppedWhenKeyLeaves(t *testing.T) {
	m := newMemoFixture(t, "")
	tok := m.s.token("a", "credsidecar", "pod-1")
	m.expect("/role/role-a", tok, 200, 1)
	// The issuer rotates its key and the old one leaves the JWKS.
	doc, err := os.ReadFile(newJWTSigner(t).path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.s.path, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.auth.Apply(parseConfig(t, m.yml)); err != nil {
		t.Fatal(err)
	}
	m.expect("/role/role-a", tok, 401, 2)
}

func TestJWTConnMemoNotAfterReviewTTL(t *testing.T) {
	api := newFakeAPIServer(t)
	m := newMemoFixture(t, "kubernetes: {api_url: "+api.URL+", token_review: true}")
	api.setKeys(m.s)
	tok := m.s.token("a", "credsidecar", "pod-1")
	api.accept(tok, true)
	m.expect("/role/role-a", tok, 200, 1)
	m.clk.Advance(jwtauth.DefaultReviewTTL - time.Second)
	m.expect("/role/role-a", tok, 200, 1)
	if n := api.reviews.Load(); n != 1 {
		t.Fatalf("%d reviews within the TTL, want 1", n)
	}
	// The review's answer is over: the token is looked up and reviewed
	// again, and then the memo serves again.
	m.clk.Advance(time.Second)
	m.expect("/role/role-a", tok, 200, 2)
	m.expect("/role/role-a", tok, 200, 2)
	if n := api.reviews.Load(); n != 2 {
		t.Fatalf("%d reviews, want 2", n)
	}
	// The pod is deleted: within a review TTL its token stops working.
	api.accept(tok, false)
	m.clk.Advance(jwtauth.DefaultReviewTTL)
	m.expect("/role/role-a", tok, 401, 3)
}

// fakeAPIServer is a Kubernetes API server on 127.0.0.1: the JWKS of a
// signer and TokenReview answering from a set of accepted tokens.
type fakeAPIServer struct {
	*httptest.Server
	mu       sync.Mutex
	jwks     []byte
	accepted map[string]bool
	reviews  atomic.Int32
}

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	s := &fakeAPIServer{accepted: map[string]bool{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch r.URL.Path {
		case "/openid/v1/jwks":
			w.Write(s.jwks)
		case "/apis/authentication.k8s.io/v1/tokenreviews":
			s.reviews.Add(1)
			var tr struct {
				Spec struct {
					Token     string   `json:"token"`
					Audiences []string `json:"audiences"`
				} `json:"spec"`
			}
			json.NewDecoder(r.Body).Decode(&tr)
			status := map[string]any{"authenticated": false, "error": "pod not found"}
			if s.accepted[tr.Spec.Token] {
				status = map[string]any{"authenticated": true, "user": map[string]any{"username": "system:serviceaccount:prod:a"}, "audiences": tr.Spec.Audiences}
			}
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *fakeAPIServer) setKeys(js *jwtSigner) {
	doc, err := os.ReadFile(js.path)
	if err != nil {
		js.t.Fatal(err)
	}
	s.mu.Lock()
	s.jwks = doc
	s.mu.Unlock()
}

func (s *fakeAPIServer) accept(tok string, ok bool) {
	s.mu.Lock()
	s.accepted[tok] = ok
	s.mu.Unlock()
}

func TestSameToken(t *testing.T) {
	tok := strings.Repeat("abcdefghij", 90) + "xyz" // words and a tail
	if !sameToken(tok, strings.Clone(tok)) || !sameToken("", "") || !sameToken("abc", "abc") {
		t.Fatal("equal tokens differ")
	}
	if sameToken(tok, tok[:len(tok)-1]) || sameToken("", "a") {
		t.Fatal("tokens of different lengths are the same")
	}
	for i := range len(tok) {
		b := []byte(tok)
		b[i] ^= 0x80
		if sameToken(tok, string(b)) {
			t.Fatalf("tokens differing at byte %d are the same", i)
		}
	}
}

// TestBearerDigestMemo: a connection remembers the digest of the last
// bearer token it carried, and a different token on the same connection
// (a proxy carrying several callers) gets its own.
func TestBearerDigestMemo(t *testing.T) {
	ci := &connInfo{}
	a, b := strings.Repeat("a", 1000), strings.Repeat("a", 999)+"b"
	da := ci.digestOf(a)
	if *da != sha256.Sum256([]byte(a)) {
		t.Fatal("wrong digest")
	}
	if ci.digestOf(strings.Clone(a)) != da {
		t.Fatal("the same token was hashed again")
	}
	if db := ci.digestOf(b); *db != sha256.Sum256([]byte(b)) || *da != sha256.Sum256([]byte(a)) {
		t.Fatal("a second token's digest is wrong, or changed the first's")
	}

	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	for i, tc := range []struct {
		token  string
		status int
	}{{billingToken, 200}, {"wrong-token", 401}, {billingToken, 200}, {billingToken + "x", 401}, {billingToken, 200}} {
		if r := f.call(t, c, http.MethodGet, "/creds", "", http.Header{"Authorization": {tc.token}}); r.status != tc.status {
			t.Fatalf("request %d (%q): %d %s, want %d", i, tc.token, r.status, r.body, tc.status)
		}
	}
}
