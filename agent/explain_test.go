package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// explainTestYAML mixes every match condition, clients in an order where
// file order decides, and a chain.
const explainTestYAML = `
sts: {mode: local, max_qps: 1000000}
roles:
  - {name: app, duration: 1h}
  - {name: other, duration: 1h}
  - {name: chained, duration: 1h, via: app, session_name: "c-{{.UID}}"}
clients:
  - {name: ci, match: {token: ci-token, source_cidrs: ["10.0.0.0/8"]}, roles: [app, chained]}
  - {name: dev, match: {uids: [1001], source_cidrs: ["127.0.0.0/8"]}, roles: [other, app]}
  - {name: anyci, match: {token: ci-token}, roles: [other]}
  - {name: net, match: {source_cidrs: ["127.0.0.1/32", "::1/128"]}, roles: [chained]}
`

// TestExplainTrustAgreesWithAgent: for every caller of a matrix, the
// explanation names the client and refusal the agent itself arrives at,
// and the session names of its chain are those the agent asks its source
// for.
func TestExplainTrustAgreesWithAgent(t *testing.T) {
	cfg := parseConfig(t, explainTestYAML)
	clk := clock.NewFake(t0)
	src := newFakeSource(clk)
	a, err := New(Options{Source: src, Clock: clk, Logger: zaptest.NewLogger(t), DisableWarm: true, Rand: func() float64 { return 0.5 }}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	uid := func(u uint32, err error) func() (uint32, error) { return func() (uint32, error) { return u, err } }
	tokens := []struct {
		tok string
		has bool
	}{{"", false}, {"ci-token", true}, {"wrong", true}, {"", true}}
	addrs := []string{"127.0.0.1", "127.0.0.2", "10.1.2.3", "192.0.2.1", "::1"}
	uids := []func() (uint32, error){uid(1001, nil), uid(1002, nil), uid(0, errors.New("no socket owner")), nil}
	roles := []string{"", "app", "other", "chained", "nope"}
	n := 0
	for _, tk := range tokens {
		for _, ad := range addrs {
			for ui, u := range uids {
				for _, role := range roles {
					c := &Caller{Token: tk.tok, HasToken: tk.has, Addr: netip.MustParseAddr(ad), UID: u}
					name := fmt.Sprintf("token=%q/%v addr=%s uid#%d role=%q", tk.tok, tk.has, ad, ui, role)
					ex, err := ExplainTrust(cfg, c, role)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					n++
					rid, ierr := a.Resolve(c)
					client := rid.Client()
					if ex.Client != client {
						t.Errorf("%s: explain says client %q, the agent %q (%v)", name, ex.Client, client, ierr)
					}
					before := len(src.reqs)
					_, cerr := a.Credentials(context.Background(), c, role)
					if (ex.Refusal == nil) != (cerr == nil) {
						t.Fatalf("%s: explain refusal %v, agent error %v", name, ex.Refusal, cerr)
					}
					if cerr != nil {
						var ae *Error
						if !errors.As(cerr, &ae) || ae.Kind != ex.Refusal.Kind || ae.Msg != ex.Refusal.Msg {
							t.Errorf("%s: explain refusal %v, agent error %v", name, ex.Refusal, cerr)
						}
						continue
					}
					// The agent's source calls for this caller (a cached hop
					// makes none) are hops of the chain, with its names.
					for _, got := range src.reqs[before:] {
						found := false
						for _, hop := range ex.Chain {
							if hop.RoleARN == got.RoleARN {
								found = true
								if hop.SessionName != got.SessionName {
									t.Errorf("%s: %s: agent asked for session %q, explain says %q", name, got.RoleARN, got.SessionName, hop.SessionName)
								}
							}
						}
						if !found {
							t.Errorf("%s: the agent asked for %s, which is not in the explained chain %v", name, got.RoleARN, ex.Chain)
						}
					}
				}
			}
		}
	}
	if n != len(tokens)*len(addrs)*len(uids)*len(roles) {
		t.Fatalf("explained %d callers", n)
	}
}

// TestExplainTrustReasons: each failed condition is named, and the client
// that matched ends the list.
func TestExplainTrustReasons(t *testing.T) {
	cfg := parseConfig(t, explainTestYAML)
	for _, tc := range []struct {
		name   string
		caller Caller
		role   string
		client string
		want   []string // "client: failed: why" per client tried
		refuse string
	}{
		{"dev by uid", Caller{Addr: netip.MustParseAddr("127.0.0.1"), UID: func() (uint32, error) { return 1001, nil }}, "", "dev",
			[]string{"ci: token: the caller presents no token", "dev: :"}, ""},
		{"uid not listed", Caller{Addr: netip.MustParseAddr("127.0.0.1"), UID: func() (uint32, error) { return 7, nil }}, "", "net",
			[]string{"dev: uids: uid 7 is not among [1001]", "anyci: token: the caller presents no token", "net: :"}, ""},
		{"ci token from the wrong network", Caller{Token: "ci-token", HasToken: true, Addr: netip.MustParseAddr("192.0.2.1")}, "", "anyci",
			[]string{"ci: source_cidrs: address 192.0.2.1 is not in [10.0.0.0/8]", "dev: source_cidrs: address 192.0.2.1 is not in [127.0.0.0/8]", "anyci: :"}, ""},
		{"unknown token", Caller{Token: "guess", HasToken: true, Addr: netip.MustParseAddr("127.0.0.1")}, "", "",
			[]string{"ci: token: the caller's token is not this client's", "net: token: its other conditions hold, but the caller's token matches no client"}, "the authorization token matches no client"},
		{"role not allowed", Caller{Addr: netip.MustParseAddr("127.0.0.1")}, "app", "net",
			[]string{"dev: uids: the caller's uid is unknown", "net: :"}, `no such role for this caller: "app"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := ExplainTrust(cfg, &tc.caller, tc.role)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, chk := range ex.Clients {
				got = append(got, chk.Client+": "+chk.Failed+": "+chk.Why)
			}
			joined := strings.Join(got, "\n")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("checks lack %q:\n%s", w, joined)
				}
			}
			if ex.Client != tc.client {
				t.Errorf("client = %q, want %q", ex.Client, tc.client)
			}
			if tc.client != "" && ex.Clients[len(ex.Clients)-1].Client != tc.client {
				t.Errorf("the list does not end at the match: %v", got)
			}
			switch {
			case tc.refuse == "" && ex.Refusal != nil:
				t.Errorf("refusal %v, want none", ex.Refusal)
			case tc.refuse != "" && (ex.Refusal == nil || ex.Refusal.Msg != tc.refuse):
				t.Errorf("refusal %v, want %q", ex.Refusal, tc.refuse)
			}
		})
	}
}
