package imds

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/credsidecar/credsidecar/jwtauth"
)

// A local user flooding the endpoint with junk bearer tokens must not
// spend the new-token budget of a trusted caller who is another local
// user: on loopback every address is one network, so the budget is the
// socket owner's uid's when that is known.
func TestJWTBudgetIsPerLocalUser(t *testing.T) {
	uids := map[netip.Addr]uint32{netip.MustParseAddr("127.0.0.2"): 4001, netip.MustParseAddr("127.0.0.1"): 4002}
	lookup := func(_, remote netip.AddrPort) (uint32, error) { return uids[remote.Addr()], nil }
	f, s := startJWTFixtureWith(t, jwtauth.Options{}, fixtureOpts{uid: lookup})
	attacker, victim := newClient(t, "127.0.0.2"), newClient(t, "127.0.0.1")
	for range 200 {
		f.call(t, attacker, "GET", "/creds", "", http.Header{"Authorization": {"x.y.z"}})
	}
	r := f.call(t, victim, "GET", "/creds", "", http.Header{"Authorization": {s.token("a", "credsidecar", "pod-1")}})
	if r.status != 200 {
		t.Fatalf("a trusted local user's new token after another local user's junk flood: %d %s", r.status, r.body)
	}
}
