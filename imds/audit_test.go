package imds

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/credsidecar/credsidecar/audit"
)

// recAuditor is a fake Auditor keeping the records it was given.
type recAuditor struct {
	mu   sync.Mutex
	recs []audit.Record
}

var _ Auditor = (*recAuditor)(nil)

func (a *recAuditor) Write(r audit.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.recs = append(a.recs, r)
}

// last returns the last record and how many there are.
func (a *recAuditor) last() (audit.Record, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.recs) == 0 {
		return audit.Record{}, 0
	}
	return a.recs[len(a.recs)-1], len(a.recs)
}

// TestAuditRecords: each answer of a credential endpoint, vend or refusal
// (including the adapter's early exits: Host, IMDSv2, rate limit), is one
// record with what an investigator needs — and nothing secret.
func TestAuditRecords(t *testing.T) {
	yml := strings.Replace(mainConfigYAML("required"), "region:", "limits: {per_client_rps: 0.001, burst: 3}\nregion:", 1)
	rec := &recAuditor{}
	f := startFixture(t, yml, fixtureOpts{source: &staticSource{}, audit: rec,
		uid: func(_, _ netip.AddrPort) (uint32, error) { return 4242, nil }})
	local := newClient(t, "127.0.0.1")
	stranger := newClient(t, "127.0.0.7")
	bearer := http.Header{"Authorization": {billingToken}}
	cases := []struct {
		name   string
		c      *http.Client
		path   string
		host   string
		hdr    http.Header
		status int
		want   audit.Record
	}{
		{"vend of the default role by token", local, "/creds", "", bearer, 200, audit.Record{
			Endpoint: epECS, Client: "billing", Caller: audit.Caller{Addr: "127.0.0.1", UID: -1, Token: true}, Role: "reports",
			RoleARN: "arn:aws:iam::" + testAccount + ":role/reports", AssumedRoleARN: "arn:aws:sts::" + testAccount + ":assumed-role/reports/billing",
			AccessKeyID: "ASIAFAKEREPORTSXXXXX", Expiration: staticExpiration, Status: 200, Result: "success"}},
		{"role the client may not have", local, "/role/admin", "", bearer, 404, audit.Record{
			Endpoint: epECS, Client: "billing", Caller: audit.Caller{Addr: "127.0.0.1", UID: -1, Token: true}, Role: "admin",
			Status: 404, Result: "NotFound", Reason: "role_not_allowed", Key: "net:127.0.0.0/8"}},
		{"Host of another name", local, "/role/app", "evil.example", bearer, 403, audit.Record{
			Endpoint: epECS, Caller: audit.Caller{Addr: "127.0.0.1", UID: -1, Token: true}, Role: "app",
			Status: 403, Result: "Forbidden", Reason: "host_not_allowed", Key: "net:127.0.0.0/8"}},
		{"IMDSv1 when v2 is required", local, credsPath + "/app", "", nil, 401, audit.Record{
			Endpoint: epIMDSCreds, Client: "local-dev", Caller: audit.Caller{Addr: "127.0.0.1", UID: -1}, Role: "app",
			Status: 401, Result: "Unauthorized", Reason: "imdsv2_required", Key: "net:127.0.0.0/8"}},
		// The rate limiter looks up an unidentified caller's uid: the
		// record then carries it, and is budgeted by it.
		{"no client", stranger, "/role/app", "", nil, 403, audit.Record{
			Endpoint: epECS, Caller: audit.Caller{Addr: "127.0.0.7", UID: 4242}, Role: "app",
			Status: 403, Result: "AccessDenied", Reason: "no_client", Key: "uid:4242"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, before := rec.last()
			if r := f.call(t, tc.c, http.MethodGet, tc.path, tc.host, tc.hdr); r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			got, n := rec.last()
			if n != before+1 {
				t.Fatalf("%d records for one answer", n-before)
			}
			got.Time = tc.want.Time
			if got != tc.want {
				t.Errorf("record\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	t.Run("rate limited", func(t *testing.T) {
		for range 3 {
			f.call(t, stranger, http.MethodGet, "/role/app", "", nil)
		}
		got, _ := rec.last()
		if got.Status != http.StatusTooManyRequests || got.Reason != "rate_limited" || got.Key != "uid:4242" || got.Role != "app" {
			t.Errorf("record %+v", got)
		}
	})
}

// TestAuditNeverLooksUpAUID: with no uid condition and no rate limit,
// nothing asks for the uid, and neither does the audit: the record has
// none and the refusal is budgeted by the loopback network.
func TestAuditNeverLooksUpAUID(t *testing.T) {
	var lookups atomic.Int64
	rec := &recAuditor{}
	f := startFixture(t, noClientYAML, fixtureOpts{source: &staticSource{}, audit: rec,
		uid: func(_, _ netip.AddrPort) (uint32, error) { lookups.Add(1); return 4242, nil }})
	f.call(t, newClient(t, "127.0.0.9"), http.MethodGet, "/role/app", "", nil)
	got, n := rec.last()
	if n != 1 || got.Caller.UID != -1 || got.Key != "net:127.0.0.0/8" || lookups.Load() != 0 {
		t.Errorf("%d records, last %+v; %d uid lookups", n, got, lookups.Load())
	}
}

func TestAuditKey(t *testing.T) {
	for _, tc := range []struct {
		uid  int64
		addr string
		want string
	}{
		{4242, "127.0.0.5", "uid:4242"},
		{0, "10.0.0.1", "uid:0"},
		{-1, "127.3.4.5", "net:127.0.0.0/8"},
		{-1, "169.254.170.10", "net:169.254.170.10/32"},
		{-1, "::ffff:10.1.2.3", "net:10.1.2.3/32"},
		{-1, "2001:db8:1:2:3:4:5:6", "net:2001:db8:1:2::/64"},
		{-1, "::1", "net:::1/128"},
	} {
		if got := auditKey(tc.uid, netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("auditKey(%d, %s) = %q, want %q", tc.uid, tc.addr, got, tc.want)
		}
	}
}
