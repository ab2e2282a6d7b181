package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/glob"
)

const jwtYAML = `
sts: {mode: local, max_qps: 1000000}
roles:
  - name: pods
    duration: 1h
    tags:
      kubernetes-namespace: '{{index .Claims "kubernetes.io" "namespace"}}'
      kubernetes-service-account: '{{index .Claims "kubernetes.io" "serviceaccount" "name"}}'
      kubernetes-pod-name: '{{index .Claims "kubernetes.io" "pod" "name"}}'
      team: billing
  - {name: fixed, duration: 1h, session_name: "fixed-{{.Client}}"}
  - {name: bysub, duration: 1h, session_name: "{{.Subject}}"}
clients:
  - {name: ci, match: {token: ci-token}, roles: [fixed]}
  - name: billing
    match:
      jwt:
        provider: cluster
        subject: "system:serviceaccount:prod:*"
        claims: {"kubernetes.io": {namespace: prod}}
    roles: [pods, fixed, bysub]
  - name: local-billing
    match: {jwt: {provider: cluster, subject: "system:serviceaccount:dev:billing"}, source_cidrs: ["127.0.0.0/8"]}
    roles: [fixed]
  - {name: net, match: {source_cidrs: ["127.0.0.0/8"]}, roles: [fixed]}
identity_providers:
  - {name: cluster, issuer: "https://k8s.test", audiences: [credsidecar], jwks_file: /dev/null}
`

func k8sJWT(ns, sa, pod string) *JWT {
	return &JWT{Provider: "cluster", Subject: "system:serviceaccount:" + ns + ":" + sa, Claims: map[string]any{
		"sub": "system:serviceaccount:" + ns + ":" + sa,
		"kubernetes.io": map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]any{"name": sa},
			"pod":            map[string]any{"name": pod},
		},
	}}
}

// jwtCaller presents a token that verifies as j (or fails with err),
// counting verifications.
func jwtCaller(addr string, j *JWT, err error, calls *atomic.Int32) *Caller {
	return &Caller{Token: "jwt-" + fmt.Sprint(j), HasToken: true, Addr: netip.MustParseAddr(addr), JWT: func() (*JWT, error) {
		if calls != nil {
			calls.Add(1)
		}
		return j, err
	}}
}

func newJWTAgent(t *testing.T) (*Agent, *fakeSource) {
	t.Helper()
	clk := clock.NewFake(t0)
	src := newFakeSource(clk)
	a, err := New(Options{Source: src, Clock: clk, Logger: zaptest.NewLogger(t), DisableWarm: true, Rand: func() float64 { return 0.5 }}, parseConfig(t, jwtYAML))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, src
}

func TestJWTIdentify(t *testing.T) {
	a, _ := newJWTAgent(t)
	verifyErr := errors.New("jwt: signature does not verify")
	tests := []struct {
		name   string
		caller *Caller
		client string
		kind   Kind
	}{
		{"prod service account", jwtCaller("10.0.0.1", k8sJWT("prod", "billing", "p1"), nil, nil), "billing", 0},
		{"another prod service account (subject glob)", jwtCaller("10.0.0.1", k8sJWT("prod", "reports", "p1"), nil, nil), "billing", 0},
		{"subject matches, claim does not", jwtCaller("10.0.0.1", &JWT{Provider: "cluster", Subject: "system:serviceaccount:prod:x", Claims: map[string]any{"kubernetes.io": map[string]any{"namespace": "dev"}}}, nil, nil), "", KindBadToken},
		{"other provider", jwtCaller("10.0.0.1", &JWT{Provider: "other", Subject: "system:serviceaccount:prod:x", Claims: k8sJWT("prod", "x", "p").Claims}, nil, nil), "", KindBadToken},
		{"dev with the source address", jwtCaller("127.0.0.1", k8sJWT("dev", "billing", "p"), nil, nil), "local-billing", 0},
		// A verified JWT whose client's other conditions fail never falls
		// back to address trust (net is listed after it).
		{"dev from elsewhere", jwtCaller("10.0.0.1", k8sJWT("dev", "billing", "p"), nil, nil), "", KindBadToken},
		{"matches no client", jwtCaller("127.0.0.1", k8sJWT("kube-system", "admin", "p"), nil, nil), "", KindBadToken},
		{"fails verification", jwtCaller("127.0.0.1", nil, verifyErr, nil), "", KindBadToken},
		{"static token", &Caller{Token: "ci-token", HasToken: true}, "ci", 0},
		{"no token, by address", addrCaller("127.0.0.1"), "net", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := a.Resolve(tc.caller)
			if id.Client() != tc.client {
				t.Fatalf("client %q, want %q (%v)", id.Client(), tc.client, err)
			}
			var ae *Error
			if tc.kind != 0 && (!errors.As(err, &ae) || ae.Kind != tc.kind) {
				t.Fatalf("err = %v, want kind %d", err, tc.kind)
			}
			if tc.kind == 0 && err != nil {
				t.Fatal(err)
			}
		})
	}
	// The verification error stays reachable for the front end.
	_, err := a.Resolve(jwtCaller("127.0.0.1", nil, verifyErr, nil))
	if !errors.Is(err, verifyErr) {
		t.Fatalf("err %v does not wrap the verification error", err)
	}
}

func TestJWTVerifiedOnlyWhenNeeded(t *testing.T) {
	var calls atomic.Int32
	a, _ := newJWTAgent(t)
	// A static token never goes through JWT verification.
	c := jwtCaller("127.0.0.1", k8sJWT("prod", "b", "p"), nil, &calls)
	c.Token = "ci-token"
	if id, _ := a.Resolve(c); id.Client() != "ci" || calls.Load() != 0 {
		t.Fatalf("client %q, %d verifications", id.Client(), calls.Load())
	}
	// Without jwt clients a token is never verified as a JWT.
	clk := clock.NewFake(t0)
	b, err := New(Options{Source: newFakeSource(clk), Clock: clk, Logger: zaptest.NewLogger(t), DisableWarm: true}, parseConfig(t, fmt.Sprintf(testYAML, 100)))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Resolve(jwtCaller("127.0.0.1", k8sJWT("prod", "b", "p"), nil, &calls)); calls.Load() != 0 || err == nil {
		t.Fatalf("%d verifications without jwt clients (err %v)", calls.Load(), err)
	}
}

func TestJWTSessionTags(t *testing.T) {
	// Two pods of one client that differ only in a claim the tags use get
	// different sessions; the same pod again is a cache hit.
	a, src := newJWTAgent(t)
	ctx := context.Background()
	p1, p2 := k8sJWT("prod", "billing", "billing-1"), k8sJWT("prod", "billing", "billing-2")
	c1, err := a.Credentials(ctx, jwtCaller("10.0.0.1", p1, nil, nil), "pods")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := a.Credentials(ctx, jwtCaller("10.0.0.1", p2, nil, nil), "pods")
	if err != nil {
		t.Fatal(err)
	}
	if c1 == c2 || src.calls.Load() != 2 {
		t.Fatalf("two pods share a session (%d source calls)", src.calls.Load())
	}
	again, err := a.Credentials(ctx, jwtCaller("10.0.0.2", p1, nil, nil), "pods")
	if err != nil || again != c1 || src.calls.Load() != 2 {
		t.Fatalf("same pod again: %v, %d source calls", err, src.calls.Load())
	}
	req := src.reqs[0]
	want := map[string]string{
		"kubernetes-namespace": "prod", "kubernetes-service-account": "billing",
		"kubernetes-pod-name": "billing-1", "team": "billing",
	}
	got := map[string]string{}
	for _, tg := range req.Tags {
		got[tg.Key] = tg.Value
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tags %v, want %v", got, want)
	}
	// The default session name names the service account.
	if req.SessionName != "billing@prod.billing" {
		t.Fatalf("session name %q", req.SessionName)
	}
	// A session name from .Subject is sanitised, with a hash.
	if _, err := a.Credentials(ctx, jwtCaller("10.0.0.1", p1, nil, nil), "bysub"); err != nil {
		t.Fatal(err)
	}
	if n := src.reqs[len(src.reqs)-1].SessionName; !strings.HasPrefix(n, "system-serviceaccount-prod-billing-") {
		t.Fatalf("session name from .Subject: %q", n)
	}
	// A constant session name is shared by the client's callers.
	f1, _ := a.Credentials(ctx, jwtCaller("10.0.0.1", p1, nil, nil), "fixed")
	f2, _ := a.Credentials(ctx, jwtCaller("10.0.0.1", p2, nil, nil), "fixed")
	if f1 == nil || f1 != f2 {
		t.Fatal("a constant session name should give one session")
	}
}

func TestJWTTagsForNonJWTCallers(t *testing.T) {
	// Template tags render empty for callers identified otherwise.
	if got := renderTags(&role{cfg: &parseConfig(t, jwtYAML).Roles[0], req: Request{Tags: []Tag{{Key: "kubernetes-namespace"}}}}, sessionData{Client: "x"}); len(got) != 1 || got[0].Value != "" {
		t.Fatalf("tags %v", got)
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		ok   bool
	}{
		{"system:serviceaccount:prod:*", "system:serviceaccount:prod:billing", true},
		{"system:serviceaccount:prod:*", "system:serviceaccount:dev:billing", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*", "", true}, {"", "", true}, {"", "a", false},
		{"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false}, {"[a]", "[a]", true}, {"x", "X", false},
		{strings.Repeat("*a", 30) + "b", strings.Repeat("a", 60), false},
		{"?", "é", true}, {"a?b", "aéb", true}, {"*é", "xxé", true}, {"é*", "éx", true}, {"??", "é", false},
	} {
		if got := glob.Match(tc.p, tc.s); got != tc.ok {
			t.Errorf("glob.Match(%q, %q) = %v", tc.p, tc.s, got)
		}
	}
}

func TestExplainJWTAgreesWithAgent(t *testing.T) {
	a, _ := newJWTAgent(t)
	cfg := a.Config()
	jwts := []struct {
		j   *JWT
		err error
	}{
		{k8sJWT("prod", "billing", "p"), nil}, {k8sJWT("dev", "billing", "p"), nil},
		{k8sJWT("kube-system", "admin", "p"), nil}, {nil, errors.New("jwt: expired")},
	}
	for _, addr := range []string{"127.0.0.1", "10.0.0.1"} {
		for i, jv := range jwts {
			for _, role := range []string{"", "pods", "fixed", "nope"} {
				c := jwtCaller(addr, jv.j, jv.err, nil)
				name := fmt.Sprintf("addr=%s jwt#%d role=%q", addr, i, role)
				ex, err := ExplainTrust(cfg, c, role)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				id, _ := a.Resolve(c)
				if ex.Client != id.Client() {
					t.Errorf("%s: explain says %q, the agent %q", name, ex.Client, id.Client())
				}
				for _, chk := range ex.Clients {
					if chk.Failed == "jwt" && chk.Why == "" {
						t.Errorf("%s: %s failed jwt without a reason", name, chk.Client)
					}
				}
			}
		}
	}
	ex, _ := ExplainTrust(cfg, jwtCaller("10.0.0.1", k8sJWT("dev", "x", "p"), nil, nil), "")
	if why := ex.Clients[1].Why; !strings.Contains(why, `subject "system:serviceaccount:dev:x" does not match`) {
		t.Fatalf("why = %q", why)
	}
}

// TestCallerTokenDigest: a front end's precomputed digest stands for the
// token in the static token lookup (it vouches that it is Token's).
func TestCallerTokenDigest(t *testing.T) {
	f := newFixture(t, 100)
	d := sha256.Sum256([]byte("alice-token"))
	withDigest := &Caller{Token: "alice-token", HasToken: true, TokenDigest: &d}
	if mustCreds(t, f.a, withDigest, "app") != mustCreds(t, f.a, alice, "app") {
		t.Fatal("the same token with its digest got another session")
	}
	other := sha256.Sum256([]byte("no-such-token"))
	if _, err := f.a.Credentials(context.Background(), &Caller{Token: "alice-token", HasToken: true, TokenDigest: &other}, "app"); kindOf(err) != KindBadToken {
		t.Fatalf("a digest of an unknown token: %v, want a bad token", err)
	}
}

// TestJWTMemoFollowsStateAndRole: the token's one-entry memo fronts
// (lastMatch, lastSession) answer only for the compiled state, client and
// role they were stored for — a reload, or asking for another role of the
// same token, never gets the previous answer.
func TestJWTMemoFollowsStateAndRole(t *testing.T) {
	a, src := newJWTAgent(t)
	ctx := context.Background()
	j := k8sJWT("prod", "billing", "billing-1")
	c := jwtCaller("10.0.0.1", j, nil, nil)
	if id, err := a.Resolve(c); err != nil || id.Client() != "billing" {
		t.Fatalf("before the reload: %q, %v", id.Client(), err)
	}
	// The reload moves billing to another namespace: the token matches no
	// client, though its memo front holds the old state's answer.
	moved := strings.Replace(jwtYAML, `namespace: prod}}`, `namespace: staging}}`, 1)
	moved = strings.Replace(moved, `"system:serviceaccount:prod:*"`, `"system:serviceaccount:staging:*"`, 1)
	a.Apply(parseConfig(t, moved))
	if id, err := a.Resolve(c); err == nil || id.Client() != "" {
		t.Fatalf("after the reload: %q, %v (the previous state's match was reused)", id.Client(), err)
	}
	a.Apply(parseConfig(t, jwtYAML))
	if id, err := a.Resolve(c); err != nil || id.Client() != "billing" {
		t.Fatalf("after reloading back: %q, %v", id.Client(), err)
	}
	// Two roles of one token, asked for in turn: each its own session.
	got := map[string]*Credentials{}
	for round := range 2 {
		for _, r := range []string{"bysub", "pods"} {
			creds, err := a.Credentials(ctx, c, r)
			if err != nil {
				t.Fatal(err)
			}
			if round == 0 {
				got[r] = creds
			} else if creds != got[r] {
				t.Fatalf("role %s asked again: another session (%s, was %s)", r, creds.AssumedRoleARN, got[r].AssumedRoleARN)
			}
		}
	}
	if got["bysub"] == got["pods"] || len(src.reqs) != 2 || src.reqs[0].SessionName == src.reqs[1].SessionName {
		t.Fatalf("two roles share a session (%d source requests)", len(src.reqs))
	}
	if n := src.calls.Load(); n != 2 {
		t.Fatalf("%d source calls for two sessions asked for twice", n)
	}
}
