package imds

import (
	"net/http"
	"testing"
)

// The instance identity document names the account: a caller matching no
// client gets 403 for it, while the region stays public (SDKs read it
// before they have credentials).
func TestIdentityDocumentNeedsAClient(t *testing.T) {
	f := startFixture(t, noClientYAML, fixtureOpts{})
	c := newClient(t, "127.0.0.1")
	tok := f.token(t, c, "60")
	hdr := http.Header{tokenHeader: {tok}}
	if r := f.call(t, c, http.MethodGet, identityPath, "", hdr); r.status != http.StatusForbidden {
		t.Fatalf("identity document for an untrusted caller: %d %s", r.status, r.body)
	}
	if r := f.call(t, c, http.MethodGet, regionPath, "", hdr); r.status != http.StatusOK || string(r.body) != testRegion {
		t.Fatalf("region: %d %s", r.status, r.body)
	}
}
