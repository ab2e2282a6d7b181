package imds

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/credsidecar/credsidecar/agent"
)

// countingAgent counts trust decisions.
type countingAgent struct {
	Agent
	resolves atomic.Int64
}

func (a *countingAgent) Resolve(c *agent.Caller) (agent.Identity, error) {
	a.resolves.Add(1)
	return a.Agent.Resolve(c)
}

func (a *countingAgent) CredentialsFor(ctx context.Context, id agent.Identity, c *agent.Caller, role string) (*agent.Credentials, error) {
	return a.Agent.CredentialsFor(ctx, id, c, role)
}

// TestOneTrustDecisionPerRequest: every credential endpoint, answered or
// refused, decides who the caller is exactly once (the rate limiter, the
// token binding and the handler share that one decision).
func TestOneTrustDecisionPerRequest(t *testing.T) {
	for _, limited := range []bool{false, true} {
		yml := mainConfigYAML("required")
		if limited {
			yml = strings.Replace(yml, "region:", "limits: {per_client_rps: 1000, burst: 1000}\nregion:", 1)
		}
		var ca *countingAgent
		f := startFixture(t, yml, fixtureOpts{source: &staticSource{}, wrap: func(a Agent) Agent {
			ca = &countingAgent{Agent: a}
			return ca
		}})
		c := newClient(t, "127.0.0.1")
		tok := f.token(t, c, "60")
		imdsHdr := http.Header{tokenHeader: {tok}}
		ecsHdr := http.Header{"Authorization": {billingToken}}
		cases := []struct {
			method, path string
			hdr          http.Header
			status       int
		}{
			{http.MethodPut, tokenPath, http.Header{tokenTTLHeader: {"60"}}, 200},
			{http.MethodGet, credsPath + "/", imdsHdr, 200},
			{http.MethodGet, credsPath + "/app", imdsHdr, 200},
			{http.MethodGet, credsPath + "/admin", imdsHdr, 404},
			{http.MethodGet, credsExtPath + "/", imdsHdr, 200},
			{http.MethodGet, credsExtPath + "/app", imdsHdr, 200},
			{http.MethodGet, iamInfoPath, imdsHdr, 200},
			{http.MethodGet, regionPath, imdsHdr, 200},
			{http.MethodGet, azPath, imdsHdr, 200},
			{http.MethodGet, instanceIDPat, imdsHdr, 200},
			{http.MethodGet, identityPath, imdsHdr, 200},
			{http.MethodGet, credsPath + "/app", nil, 401},
			{http.MethodGet, credsPath + "/app", http.Header{tokenHeader: {"forged"}}, 401},
			{http.MethodGet, ecsCredsPath, ecsHdr, 200},
			{http.MethodGet, "/role/reports", ecsHdr, 200},
			{http.MethodGet, "/role/admin", ecsHdr, 404},
			{http.MethodGet, ecsCredsPath, http.Header{"Authorization": {"wrong"}}, 401},
		}
		for _, tc := range cases {
			before := ca.resolves.Load()
			r := f.call(t, c, tc.method, tc.path, "", tc.hdr)
			if r.status != tc.status {
				t.Errorf("limited=%v %s %s: status %d, want %d (%s)", limited, tc.method, tc.path, r.status, tc.status, r.body)
			}
			if n := ca.resolves.Load() - before; n != 1 {
				t.Errorf("limited=%v %s %s: %d trust decisions, want exactly 1", limited, tc.method, tc.path, n)
			}
		}
	}
}

// TestRetryAfterIsTheLimitersDelay: a caller told to wait 10 s is told 10,
// not 1 (the error writer used to overwrite the limiter's value).
func TestRetryAfterIsTheLimitersDelay(t *testing.T) {
	yml := strings.Replace(mainConfigYAML("required"), "region:", "limits: {per_client_rps: 0.1, burst: 1}\nregion:", 1)
	f := startFixture(t, yml, fixtureOpts{source: &staticSource{}})
	c := newClient(t, "127.0.0.1")
	billing := http.Header{"Authorization": {billingToken}}
	if r := f.call(t, c, http.MethodGet, "/creds", "", billing); r.status != 200 {
		t.Fatalf("first request: %d %s", r.status, r.body)
	}
	r := f.call(t, c, http.MethodGet, "/creds", "", billing)
	checkError(t, r, http.StatusTooManyRequests, "TooManyRequests")
	// One token per 10 s: the next is 10 s away (9 or 10 after rounding
	// up the time this test has taken).
	if got := r.header.Get("Retry-After"); got != "10" && got != "9" {
		t.Fatalf("Retry-After = %q, want 10", got)
	}
}

// TestUnidentifiedCallersShareABucketPerUID: callers matching no client
// are limited per local uid, so a user cannot multiply their budget by
// connecting from more loopback addresses; another uid is not starved.
func TestUnidentifiedCallersShareABucketPerUID(t *testing.T) {
	yml := strings.Replace(noClientYAML, "region:", "limits: {per_client_rps: 0.01, burst: 2}\nregion:", 1)
	uidOf := map[string]uint32{"127.0.0.1": 4242, "127.0.0.3": 4242, "127.0.0.4": 4343}
	f := startFixture(t, yml, fixtureOpts{source: &staticSource{}, uid: func(_, remote netip.AddrPort) (uint32, error) {
		return uidOf[remote.Addr().String()], nil
	}})
	get := func(ip string) int {
		return f.call(t, newClient(t, ip), http.MethodGet, "/creds", "", nil).status
	}
	if a, b := get("127.0.0.1"), get("127.0.0.3"); a != 403 || b != 403 {
		t.Fatalf("within uid 4242's burst: %d %d", a, b)
	}
	if s := get("127.0.0.3"); s != http.StatusTooManyRequests {
		t.Fatalf("uid 4242 from a third address: %d, want 429", s)
	}
	if s := get("127.0.0.4"); s != 403 {
		t.Fatalf("uid 4343: %d, want its own bucket (403)", s)
	}
}

// TestIdentityDocumentAccount: the identity document names the account of
// the caller's own default role — the one iam/info names — not the first
// role of the config, which the caller may not have.
func TestIdentityDocumentAccount(t *testing.T) {
	// aws mode: roles of several accounts (local mode emulates one).
	yml := `
region: ` + testRegion + `
sts: { mode: aws }
roles:
  - name: first
    arn: arn:aws:iam::111111111111:role/first
  - name: mine
    arn: arn:aws:iam::222222222222:role/mine
clients:
  - name: local
    match: { source_cidrs: ["127.0.0.1/32"] }
    roles: [mine]
`
	f := startFixture(t, yml, fixtureOpts{source: &staticSource{}})
	c := newClient(t, "127.0.0.1")
	hdr := http.Header{tokenHeader: {f.token(t, c, "60")}}
	r := f.call(t, c, http.MethodGet, identityPath, "", hdr)
	var doc struct {
		AccountID string `json:"accountId"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &doc) != nil {
		t.Fatalf("identity document: %d %s", r.status, r.body)
	}
	if doc.AccountID != "222222222222" {
		t.Errorf("identity document account = %q, want the caller's role's 222222222222", doc.AccountID)
	}
	r = f.call(t, c, http.MethodGet, iamInfoPath, "", hdr)
	if r.status != 200 || !strings.Contains(string(r.body), "arn:aws:iam::222222222222:instance-profile/mine") {
		t.Errorf("iam/info: %d %s", r.status, r.body)
	}
}

// TestBusyUIDLookupIsAskedAgain: a lookup that got no answer (sock_diag
// busy under a flood) is not remembered for the connection: the next
// request on it asks again, so a trusted keep-alive caller is not refused
// for the life of its connection. A definitive answer is remembered.
func TestBusyUIDLookupIsAskedAgain(t *testing.T) {
	yml := `
region: ` + testRegion + `
sts: { mode: local, local: { account_id: "` + testAccount + `" } }
roles: [{name: app}]
clients: [{name: alice, match: {uids: [4242]}, roles: [app]}]
`
	var calls atomic.Int64
	f := startFixture(t, yml, fixtureOpts{source: &staticSource{}, uid: func(_, _ netip.AddrPort) (uint32, error) {
		if calls.Add(1) == 1 {
			return 0, fmt.Errorf("test: %w", ErrUIDBusy)
		}
		return 4242, nil
	}})
	c := newClient(t, "127.0.0.1") // keep-alive: one connection
	if r := f.call(t, c, http.MethodGet, "/creds", "", nil); r.status != http.StatusForbidden {
		t.Fatalf("while the lookup is busy: %d, want 403 (fail closed)", r.status)
	}
	if r := f.call(t, c, http.MethodGet, "/creds", "", nil); r.status != http.StatusOK {
		t.Fatalf("next request on the same connection: %d, want 200", r.status)
	}
	f.call(t, c, http.MethodGet, "/creds", "", nil)
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d lookups, want 2 (a busy one, then one remembered)", n)
	}
}
