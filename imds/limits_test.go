package imds

import (
	"net/http"
	"strings"
	"testing"
)

func TestPerClientRateLimit(t *testing.T) {
	yml := strings.Replace(mainConfigYAML("required"), "region:", "limits: {per_client_rps: 0.5, burst: 2}\nregion:", 1)
	f := startFixture(t, yml, fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	billing := http.Header{"Authorization": {billingToken}}
	for i := range 2 {
		if r := f.call(t, c, http.MethodGet, "/creds", "", billing); r.status != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	r := f.call(t, c, http.MethodGet, "/creds", "", billing)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("over the limit: %d, Retry-After %q", r.status, r.header.Get("Retry-After"))
	}
	if !strings.Contains(string(r.body), `"code":"TooManyRequests"`) {
		t.Fatalf("body %s", r.body)
	}
	// Another caller is not starved by the first one.
	tok := f.token(t, c, "60")
	if r := f.call(t, c, http.MethodGet, credsPath+"/app", "", http.Header{tokenHeader: {tok}}); r.status != 200 {
		t.Fatalf("other client: %d %s", r.status, r.body)
	}
	// A reload that turns the limit off applies at once.
	f.srv.Apply(parseConfig(t, mainConfigYAML("required")))
	if r := f.call(t, c, http.MethodGet, "/creds", "", billing); r.status != 200 {
		t.Fatalf("after the limit was lifted: %d", r.status)
	}
}

func TestRateLimitOffByDefault(t *testing.T) {
	f := startFixture(t, mainConfigYAML("required"), fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	for range 50 {
		if r := f.call(t, c, http.MethodGet, "/creds", "", http.Header{"Authorization": {billingToken}}); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	}
}
