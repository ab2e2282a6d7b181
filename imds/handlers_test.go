package imds

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// TestErrors sends bad input through the real router on a real listener
// (so RemoteAddr is 127.0.0.1) and checks each status and JSON error body.
func TestErrors(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	good := f.token(t, c, "21600")
	garbage := strings.Repeat("!~*%$-not-base64 ", 400)
	withTok := func(h http.Header) http.Header {
		if h == nil {
			h = http.Header{}
		}
		h.Set(tokenHeader, good)
		return h
	}
	ttl := func(v string) http.Header { return http.Header{tokenTTLHeader: {v}} }
	bearer := func(v string) http.Header { return http.Header{"Authorization": {v}} }

	for _, tc := range []struct {
		name   string
		method string
		path   string
		host   string
		hdr    http.Header
		status int
		code   string
	}{
		{"imds_creds_without_token", "GET", credsPath + "/app", "", nil, 401, "Unauthorized"},
		{"imds_role_list_without_token", "GET", credsPath + "/", "", nil, 401, "Unauthorized"},
		{"imds_region_without_token", "GET", regionPath, "", nil, 401, "Unauthorized"},
		{"token_ttl_zero", "PUT", tokenPath, "", ttl("0"), 400, "BadRequest"},
		{"token_ttl_too_long", "PUT", tokenPath, "", ttl("21601"), 400, "BadRequest"},
		{"token_ttl_not_a_number", "PUT", tokenPath, "", ttl("abc"), 400, "BadRequest"},
		{"token_ttl_negative", "PUT", tokenPath, "", ttl("-1"), 400, "BadRequest"},
		{"token_ttl_missing", "PUT", tokenPath, "", nil, 400, "BadRequest"},
		{"token_through_proxy", "PUT", tokenPath, "", http.Header{tokenTTLHeader: {"60"}, "X-Forwarded-For": {"203.0.113.9"}}, 403, "Forbidden"},
		{"imds_unknown_role", "GET", credsPath + "/nope", "", withTok(nil), 404, "NotFound"},
		{"imds_role_not_allowed", "GET", credsPath + "/reports", "", withTok(nil), 404, "NotFound"},
		{"imds_ext_unknown_role", "GET", credsExtPath + "/nope", "", withTok(nil), 404, "NotFound"},
		{"imds_ext_role_not_allowed", "GET", credsExtPath + "/reports", "", withTok(nil), 404, "NotFound"},
		{"ecs_unknown_role", "GET", "/role/nope", "", bearer(billingToken), 404, "NotFound"},
		{"ecs_role_not_allowed", "GET", "/role/admin", "", bearer(billingToken), 404, "NotFound"},
		{"ecs_addr_unknown_role", "GET", "/role/nope", "", nil, 404, "NotFound"},
		{"ecs_addr_role_not_allowed", "GET", "/role/reports", "", nil, 404, "NotFound"},
		{"ecs_wrong_token", "GET", "/role/app", "", bearer("wrong-token"), 401, "Unauthorized"},
		{"ecs_wrong_token_creds", "GET", "/creds", "", bearer("wrong-token"), 401, "Unauthorized"},
		{"ecs_empty_token", "GET", "/creds", "", bearer(""), 401, "Unauthorized"},
		{"imds_creds_post", "POST", credsPath + "/app", "", withTok(nil), 405, "MethodNotAllowed"},
		{"imds_role_list_delete", "DELETE", credsPath + "/", "", withTok(nil), 405, "MethodNotAllowed"},
		{"token_get", "GET", tokenPath, "", withTok(nil), 405, "MethodNotAllowed"},
		{"ecs_creds_post", "POST", "/creds", "", nil, 405, "MethodNotAllowed"},
		{"ecs_role_put", "PUT", "/role/app", "", nil, 405, "MethodNotAllowed"},
		{"unknown_path", "GET", "/nope", "", withTok(nil), 404, "NotFound"},
		{"unknown_metadata_path", "GET", "/latest/meta-data/hostname", "", withTok(nil), 404, "NotFound"},
		{"ecs_role_without_name", "GET", "/role/", "", nil, 404, "NotFound"},
		{"unclean_path", "GET", "/latest/meta-data/iam/security-credentials//app", "", withTok(nil), 404, "NotFound"},
		{"dot_dot_path", "GET", "/latest/meta-data/iam/../iam/security-credentials/app", "", withTok(nil), 404, "NotFound"},
		{"garbage_token", "GET", credsPath + "/app", "", http.Header{tokenHeader: {garbage}}, 401, "Unauthorized"},
		{"tampered_token", "GET", credsPath + "/app", "", http.Header{tokenHeader: {flipChar(good, 20)}}, 401, "Unauthorized"},
		{"noncanonical_token", "GET", credsPath + "/app", "", http.Header{tokenHeader: {noncanonical(good)}}, 401, "Unauthorized"},
		{"truncated_token", "GET", credsPath + "/app", "", http.Header{tokenHeader: {good[:len(good)-4]}}, 401, "Unauthorized"},
		{"empty_token", "GET", credsPath + "/app", "", http.Header{tokenHeader: {""}}, 401, "Unauthorized"},
		{"two_tokens", "GET", credsPath + "/app", "", http.Header{tokenHeader: {good, good}}, 401, "Unauthorized"},
		{"host_imds_creds", "GET", credsPath + "/app", "evil.example", withTok(nil), 403, "Forbidden"},
		{"host_imds_role_list", "GET", credsPath + "/", "evil.example", withTok(nil), 403, "Forbidden"},
		{"host_imds_ext_creds", "GET", credsExtPath + "/app", "evil.example", withTok(nil), 403, "Forbidden"},
		{"host_token", "PUT", tokenPath, "evil.example:80", ttl("60"), 403, "Forbidden"},
		{"host_ecs_role", "GET", "/role/app", "evil.example", bearer(billingToken), 403, "Forbidden"},
		{"host_ecs_creds", "GET", "/creds", "evil.example", nil, 403, "Forbidden"},
		{"host_rebound_subdomain", "GET", "/creds", "127.0.0.1.evil.example", nil, 403, "Forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(t, c, tc.method, tc.path, tc.host, tc.hdr)
			checkError(t, r, tc.status, tc.code)
			golden(t, "errors/"+tc.name, r.body)
		})
	}
}

// TestNotFoundHidesRoles: an unknown role and a role the caller may not
// have get byte-identical answers, on every credential path.
func TestNotFoundHidesRoles(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	tok := http.Header{tokenHeader: {f.token(t, c, "60")}}
	bill := http.Header{"Authorization": {billingToken}}
	for _, pair := range []struct {
		name           string
		unknown, other string
		hdr            http.Header
	}{
		{"imds", credsPath + "/nope", credsPath + "/reports", tok},
		{"imds_extended", credsExtPath + "/nope", credsExtPath + "/reports", tok},
		{"ecs_by_address", "/role/nope", "/role/reports", nil},
		{"ecs_by_token", "/role/nope", "/role/admin", bill},
	} {
		t.Run(pair.name, func(t *testing.T) {
			a := f.call(t, c, http.MethodGet, pair.unknown, "", pair.hdr)
			b := f.call(t, c, http.MethodGet, pair.other, "", pair.hdr)
			if a.status != http.StatusNotFound || b.status != http.StatusNotFound {
				t.Fatalf("statuses %d, %d; want 404, 404", a.status, b.status)
			}
			if !bytes.Equal(a.body, b.body) {
				t.Errorf("bodies differ, telling which roles exist:\nunknown: %s\nnot allowed: %s", a.body, b.body)
			}
			if strings.Contains(string(b.body), "reports") || strings.Contains(string(b.body), "admin") {
				t.Errorf("404 body names a role: %s", b.body)
			}
		})
	}
}

// TestTokenSuccess: the TTL is echoed (as the number it was read as), the
// token is text/plain and opens the metadata paths.
func TestTokenSuccess(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	for ttl, echo := range map[string]string{"1": "1", "60": "60", "21600": "21600", "+60": "60", "060": "60"} {
		r := f.call(t, c, http.MethodPut, tokenPath, "", http.Header{tokenTTLHeader: {ttl}})
		if r.status != http.StatusOK {
			t.Fatalf("PUT ttl %s: %d %s", ttl, r.status, r.body)
		}
		if got := r.header.Get(tokenTTLHeader); got != echo {
			t.Errorf("TTL %q echoed as %q, want %q", ttl, got, echo)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/plain" {
			t.Errorf("token Content-Type = %q", ct)
		}
		if len(r.body) == 0 || len(r.body) > tokenMaxLen || bytes.ContainsAny(r.body, "\r\n ") {
			t.Errorf("token body %q: want a single short word", r.body)
		}
	}
}

var awsTime = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$`)

// TestSuccessBodies checks the documents SDKs parse, on both the real
// local source (formats) and a fixed fake source (golden bytes).
func TestSuccessBodies(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	tok := http.Header{tokenHeader: {f.token(t, c, "60")}}

	for _, p := range []string{credsPath, credsPath + "/", credsExtPath, credsExtPath + "/"} {
		r := f.call(t, c, http.MethodGet, p, "", tok)
		if r.status != http.StatusOK || string(r.body) != "app" {
			t.Errorf("GET %s = %d %q, want 200 \"app\" (one line, no trailing newline)", p, r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "text/plain" {
			t.Errorf("GET %s Content-Type = %q", p, ct)
		}
	}

	for _, p := range []string{credsPath + "/app", credsPath + "/app/", credsExtPath + "/app", credsExtPath + "/app/"} {
		t.Run("imds"+strings.ReplaceAll(p, "/", "_"), func(t *testing.T) {
			r := f.call(t, c, http.MethodGet, p, "", tok)
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "text/plain" {
				t.Errorf("Content-Type = %q, want text/plain as EC2", ct)
			}
			var m map[string]string
			if err := json.Unmarshal(r.body, &m); err != nil {
				t.Fatalf("body: %v", err)
			}
			extended := strings.HasPrefix(p, credsExtPath)
			want := []string{"Code", "LastUpdated", "Type", "AccessKeyId", "SecretAccessKey", "Token", "Expiration"}
			if extended {
				want = append(want, "AccountId")
			}
			if len(m) != len(want) {
				t.Errorf("keys = %v, want exactly %v", keys(m), want)
			}
			for _, k := range want {
				if m[k] == "" {
					t.Errorf("%s missing or empty", k)
				}
			}
			if m["Code"] != "Success" || m["Type"] != "AWS-HMAC" {
				t.Errorf("Code %q Type %q", m["Code"], m["Type"])
			}
			for _, k := range []string{"LastUpdated", "Expiration"} {
				if !awsTime.MatchString(m[k]) {
					t.Errorf("%s = %q, not YYYY-MM-DDTHH:MM:SSZ", k, m[k])
				}
			}
			if !strings.HasPrefix(m["AccessKeyId"], "ASIA") {
				t.Errorf("AccessKeyId %q is not temporary (ASIA)", m["AccessKeyId"])
			}
			if extended && m["AccountId"] != testAccount {
				t.Errorf("AccountId = %q, want %s", m["AccountId"], testAccount)
			}
		})
	}

	for _, tc := range []struct {
		path, role string
		hdr        http.Header
	}{
		{"/role/app", "app", nil},
		{"/role/app/", "app", nil},
		{"/creds", "app", nil},
		{"/creds/", "app", nil},
		{"/creds", "reports", http.Header{"Authorization": {billingToken}}},
		{"/role/app", "app", http.Header{"Authorization": {billingToken}}},
	} {
		t.Run("ecs"+strings.ReplaceAll(tc.path, "/", "_")+"_"+tc.role, func(t *testing.T) {
			r := f.call(t, c, http.MethodGet, tc.path, "", tc.hdr)
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var m map[string]string
			if err := json.Unmarshal(r.body, &m); err != nil {
				t.Fatalf("body: %v", err)
			}
			for _, k := range []string{"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "RoleArn"} {
				if m[k] == "" {
					t.Errorf("%s missing or empty", k)
				}
			}
			if want := "arn:aws:iam::" + testAccount + ":role/" + tc.role; m["RoleArn"] != want {
				t.Errorf("RoleArn = %q, want %q", m["RoleArn"], want)
			}
			if !awsTime.MatchString(m["Expiration"]) {
				t.Errorf("Expiration = %q", m["Expiration"])
			}
		})
	}
}

// TestGoldenBodies pins the exact bytes of every success document with a
// fixed fake source.
func TestGoldenBodies(t *testing.T) {
	fk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	f := startFixture(t, mainConfigYAML("optional"), fixtureOpts{source: &staticSource{}, clock: fk})
	c := newClient(t, "127.0.0.1")
	bill := http.Header{"Authorization": {billingToken}}
	for _, tc := range []struct {
		name, path string
		hdr        http.Header
	}{
		{"imds_role_list", credsPath + "/", nil},
		{"imds_credentials", credsPath + "/app", nil},
		{"imds_credentials_extended", credsExtPath + "/app", nil},
		{"imds_iam_info", iamInfoPath, nil},
		{"imds_region", regionPath, nil},
		{"imds_availability_zone", azPath, nil},
		{"imds_identity_document", identityPath, nil},
		{"ecs_role", "/role/app", nil},
		{"ecs_creds_token", "/creds", bill},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.call(t, c, http.MethodGet, tc.path, "", tc.hdr)
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			golden(t, "ok/"+tc.name, r.body)
		})
	}
	r := f.call(t, c, http.MethodGet, instanceIDPat, "", nil)
	if r.status != http.StatusOK || !regexp.MustCompile(`^i-[0-9a-f]{17}$`).Match(r.body) {
		t.Errorf("instance-id = %d %q", r.status, r.body)
	}
}

// TestHostAllowlist: the listener's own address, localhost and the
// metadata addresses are accepted as Host; anything else is refused.
func TestHostAllowlist(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	_, port, _ := strings.Cut(f.addr, ":")
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "169.254.169.254", "169.254.169.254:80", "169.254.170.2", "LOCALHOST:" + port, "[fd00:ec2::254]"} {
		t.Run(host, func(t *testing.T) {
			r := f.call(t, c, http.MethodPut, tokenPath, host, http.Header{tokenTTLHeader: {"60"}})
			if r.status != http.StatusOK {
				t.Fatalf("PUT token with Host %s: %d %s", host, r.status, r.body)
			}
			tok := http.Header{tokenHeader: {string(r.body)}}
			for _, p := range []string{credsPath + "/", credsPath + "/app", credsExtPath + "/app"} {
				if r := f.call(t, c, http.MethodGet, p, host, tok); r.status != http.StatusOK {
					t.Errorf("GET %s with Host %s: %d %s", p, host, r.status, r.body)
				}
			}
			for _, p := range []string{"/creds", "/role/app"} {
				if r := f.call(t, c, http.MethodGet, p, host, nil); r.status != http.StatusOK {
					t.Errorf("GET %s with Host %s: %d %s", p, host, r.status, r.body)
				}
			}
		})
	}
}

// TestAllowedHostsConfig: allowed_hosts extends the list, and Apply swaps
// it on reload.
func TestAllowedHostsConfig(t *testing.T) {
	f := startFixture(t, mainConfigYAML("optional"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	if r := f.call(t, c, http.MethodGet, "/creds", "sidecar.internal", nil); r.status != http.StatusForbidden {
		t.Fatalf("before allowed_hosts: %d", r.status)
	}
	f.srv.Apply(parseConfig(t, mainConfigYAML("optional")+"allowed_hosts: [Sidecar.Internal]\n"))
	if r := f.call(t, c, http.MethodGet, "/creds", "sidecar.internal:8169", nil); r.status != http.StatusOK {
		t.Errorf("with allowed_hosts: %d %s", r.status, r.body)
	}
}

// TestNoClient: a caller that matches no client gets 403 on every
// credential path, and learns nothing about roles.
func TestNoClient(t *testing.T) {
	f := startFixture(t, noClientYAML, fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	// A token is issued (it opens nothing), as EC2 would.
	tok := http.Header{tokenHeader: {f.token(t, c, "60")}}
	for _, tc := range []struct {
		path string
		hdr  http.Header
	}{
		{credsPath + "/", tok},
		{credsPath + "/app", tok},
		{credsPath + "/nope", tok},
		{credsExtPath + "/app", tok},
		{iamInfoPath, tok},
		{"/creds", nil},
		{"/role/app", nil},
		{"/role/nope", nil},
	} {
		r := f.call(t, c, http.MethodGet, tc.path, "", tc.hdr)
		checkError(t, r, http.StatusForbidden, "AccessDenied")
		if strings.Contains(string(r.body), "app") {
			t.Errorf("%s: 403 body names a role: %s", tc.path, r.body)
		}
	}
	// The token-bearing client is still served.
	r := f.call(t, c, http.MethodGet, "/creds", "", http.Header{"Authorization": {billingToken}})
	if r.status != http.StatusOK {
		t.Errorf("billing token: %d %s", r.status, r.body)
	}
}

// TestTokenBoundToAddress: a token issued to 127.0.0.1 is refused from
// 127.0.0.2, although both addresses are the same client.
func TestTokenBoundToAddress(t *testing.T) {
	f := startFixture(t, sharedYAML, fixtureOpts{})
	one, two := newClient(t, "127.0.0.1"), newClient(t, "127.0.0.2")
	tok := http.Header{tokenHeader: {f.token(t, one, "60")}}
	if r := f.call(t, one, http.MethodGet, credsPath+"/app", "", tok); r.status != http.StatusOK {
		t.Fatalf("issuing address: %d %s", r.status, r.body)
	}
	r := f.call(t, two, http.MethodGet, credsPath+"/app", "", tok)
	checkError(t, r, http.StatusUnauthorized, "Unauthorized")
	// The other address's own token works.
	tok2 := http.Header{tokenHeader: {f.token(t, two, "60")}}
	if r := f.call(t, two, http.MethodGet, credsPath+"/app", "", tok2); r.status != http.StatusOK {
		t.Errorf("own token from 127.0.0.2: %d %s", r.status, r.body)
	}
}

// TestTokenBoundToClient: a token issued to one client is refused after a
// reload makes the same address another client.
func TestTokenBoundToClient(t *testing.T) {
	f := startFixture(t, sharedYAML, fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	tok := http.Header{tokenHeader: {f.token(t, c, "60")}}
	f.agent.Apply(parseConfig(t, strings.Replace(sharedYAML, "name: loopback", "name: renamed", 1)))
	r := f.call(t, c, http.MethodGet, credsPath+"/app", "", tok)
	checkError(t, r, http.StatusUnauthorized, "Unauthorized")
}

// TestTokenExpiry: a token is good until its TTL has passed on the
// server's clock, and refused from then on.
func TestTokenExpiry(t *testing.T) {
	fk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{clock: fk})
	c := newClient(t, "127.0.0.1")
	short := http.Header{tokenHeader: {f.token(t, c, "1")}}
	long := http.Header{tokenHeader: {f.token(t, c, "21600")}}
	if r := f.call(t, c, http.MethodGet, credsPath+"/app", "", short); r.status != http.StatusOK {
		t.Fatalf("fresh token: %d %s", r.status, r.body)
	}
	fk.Advance(time.Second)
	checkError(t, f.call(t, c, http.MethodGet, credsPath+"/app", "", short), http.StatusUnauthorized, "Unauthorized")
	fk.Advance(21598 * time.Second)
	if r := f.call(t, c, http.MethodGet, credsPath+"/", "", long); r.status != http.StatusOK {
		t.Fatalf("token 1s before its TTL: %d %s", r.status, r.body)
	}
	fk.Advance(time.Second)
	checkError(t, f.call(t, c, http.MethodGet, credsPath+"/", "", long), http.StatusUnauthorized, "Unauthorized")
}

// TestTokensOptional: IMDSv1 GETs work when tokens are optional, but a
// presented token is still verified.
func TestTokensOptional(t *testing.T) {
	f := startFixture(t, mainConfigYAML("optional"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	if r := f.call(t, c, http.MethodGet, credsPath+"/app", "", nil); r.status != http.StatusOK {
		t.Errorf("IMDSv1 GET: %d %s", r.status, r.body)
	}
	checkError(t, f.call(t, c, http.MethodGet, credsPath+"/app", "", http.Header{tokenHeader: {"bogus"}}), http.StatusUnauthorized, "Unauthorized")
}

func keys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// flipChar changes the base64 character at i to another valid one.
func flipChar(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// noncanonical re-spells a raw base64url token with the unused low bits of
// its last character set: the same bytes under most decoders.
func noncanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	// 28 bytes in 38 characters: the last character carries 2 bits.
	return s[:len(s)-1] + string(alphabet[last|0x0f])
}

// TestTokenPutVerifiesOnItsConnection: a token PUT leaves its token
// verified on its own connection, for its client and until its expiry —
// what the HMAC check would conclude there — and for nothing else: another
// client, or after the expiry, is checked (and refused) as before.
func TestTokenPutVerifiesOnItsConnection(t *testing.T) {
	f := newFixture(t, sharedYAML, fixtureOpts{})
	ctx := f.srv.ConnContext(context.Background(), &hookConn{})
	req := httptest.NewRequest("PUT", tokenPath, nil).WithContext(ctx)
	req.RemoteAddr, req.Host = "127.0.0.1:40000", "169.254.169.254"
	req.Header.Set(tokenTTLHeader, "60")
	w := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(w, req)
	if w.Code != 200 {
		t.Fatalf("PUT: %d %s", w.Code, w.Body)
	}
	tok := w.Body.String()
	ci := connOf(req)
	m := ci.token.Load()
	if m == nil || m.token != tok || m.client != "loopback" {
		t.Fatalf("the connection's verified token after the PUT: %+v; want %q of loopback", m, tok)
	}
	now := time.Now()
	if !f.srv.tokenValid(ci, tok, "loopback", &ci.caller, now) {
		t.Fatal("the token just issued on the connection is not valid there")
	}
	if f.srv.tokenValid(ci, tok, "other", &ci.caller, now) {
		t.Fatal("the memo let another client use the token")
	}
	if f.srv.tokenValid(ci, tok, "loopback", &ci.caller, now.Add(61*time.Second)) {
		t.Fatal("the memo outlived the token's expiry")
	}
}
