package agent

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/credsidecar/credsidecar/config"
)

// The index (index.go) against a plain scan in file order: on random
// configs whose clients share values (so that several match one caller),
// for random callers, identify must pick the client the scan picks, with
// the same refusal, and ask for exactly the lazy attributes the scan asks
// for; explain must agree with both.

// scanIdentify is identify as a plain scan of every client in file order,
// the reference the index must agree with.
func scanIdentify(st *state, c *Caller) (*client, Kind) {
	u := uidMemo{c: c}
	wa := attrs{c: c}
	var tokenless []*client
	for _, cl := range st.clients {
		if cl.tokenHash == nil && cl.jwt == nil {
			tokenless = append(tokenless, cl)
		}
	}
	var withToken []*client
	if c.HasToken {
		hasTok, hasJWT := false, false
		for _, cl := range st.clients {
			hasTok = hasTok || cl.tokenHash != nil
			hasJWT = hasJWT || cl.jwt != nil
		}
		if hasTok {
			for _, cl := range st.clients {
				if d := sha256Of(c.Token); cl.tokenHash != nil && *cl.tokenHash == d {
					withToken = append(withToken, cl)
				}
			}
		}
		if len(withToken) == 0 {
			if !hasJWT || c.JWT == nil {
				return nil, KindBadToken
			}
			j, err := c.JWT()
			if err != nil {
				return nil, KindBadToken
			}
			for _, cl := range st.clients {
				if cl.jwt != nil && cl.jwt.matches(j) {
					withToken = append(withToken, cl)
				}
			}
			if len(withToken) == 0 {
				return nil, KindBadToken
			}
		}
	}
	i, j := 0, 0
	for i < len(withToken) || j < len(tokenless) {
		var cl *client
		if j >= len(tokenless) || (i < len(withToken) && withToken[i].idx < tokenless[j].idx) {
			cl, i = withToken[i], i+1
		} else {
			if c.HasToken && i > 0 {
				j = len(tokenless)
				continue
			}
			cl, j = tokenless[j], j+1
		}
		if cl.holds(c, &u, &wa) {
			return cl, 0
		}
	}
	if c.HasToken {
		return nil, KindBadToken
	}
	return nil, KindNoClient
}

// Value pools: small, so that clients and callers collide.
var (
	propAddrs   = []string{"10.0.0.1", "10.0.0.2", "10.0.1.7", "192.168.1.1", "::1", "fd00::5", "fe80::1%eth0", "::ffff:10.0.0.1"}
	propCIDRs   = []string{"10.0.0.1/32", "10.0.0.0/24", "10.0.0.0/8", "0.0.0.0/0", "::1/128", "fd00::/64", "::/0", "10.0.1.7", "192.168.1.0/24"}
	propUnits   = []string{"a.service", "b.service", "a*.service", "?.service"}
	propCgroups = []string{"/system.slice/a.service", "/system.slice/*", "/user.slice/b"}
	propExes    = []string{"/usr/bin/a", "/usr/bin/*", "/usr/bin/b"}
	propHashes  = []string{strings.Repeat("ab", 32), strings.Repeat("AB", 32), strings.Repeat("cd", 32)}
	propLabels  = []string{"x", "y"}
	propNames   = []string{"web", "web-*", "db"}
	propImages  = []string{"example/web:1", "example/*", "sha256:abc"}
	propSubs    = []string{"s1", "s2", "s*", ""}
	propTokens  = []string{"t1", "t2"}
)

func pick[T any](r *rand.Rand, l []T) T { return l[r.IntN(len(l))] }

// propMatch writes one random match (never empty, always valid).
func propMatch(r *rand.Rand) string {
	for {
		var parts []string
		hasUIDs := false
		if r.IntN(5) == 0 {
			if r.IntN(2) == 0 {
				parts = append(parts, fmt.Sprintf("token: %s", pick(r, propTokens)))
			} else {
				sub := pick(r, propSubs)
				claims := ""
				if r.IntN(3) == 0 {
					claims = fmt.Sprintf(", claims: {ns: %q}", pick(r, []string{"prod", "p*"}))
				}
				parts = append(parts, fmt.Sprintf("jwt: {provider: %s, subject: %q%s}", pick(r, []string{"p1", "p2"}), sub, claims))
			}
		}
		if r.IntN(3) == 0 {
			var cs []string
			for range 1 + r.IntN(2) {
				cs = append(cs, fmt.Sprintf("%q", pick(r, propCIDRs)))
			}
			parts = append(parts, "source_cidrs: ["+strings.Join(cs, ", ")+"]")
		}
		if r.IntN(3) == 0 {
			hasUIDs = true
			parts = append(parts, fmt.Sprintf("uids: [%d, %d]", 1+r.IntN(3), 1+r.IntN(3)))
		}
		if r.IntN(3) == 0 {
			parts = append(parts, fmt.Sprintf("systemd_unit: %q", pick(r, propUnits)))
		}
		if hasUIDs && r.IntN(4) == 0 {
			parts = append(parts, fmt.Sprintf("systemd_user_unit: %q", pick(r, propUnits)))
		}
		if r.IntN(5) == 0 {
			parts = append(parts, fmt.Sprintf("cgroup: %q", pick(r, propCgroups)))
		}
		if r.IntN(5) == 0 {
			parts = append(parts, fmt.Sprintf("exe: %q", pick(r, propExes)))
		}
		if r.IntN(6) == 0 {
			parts = append(parts, fmt.Sprintf("exe_sha256: %q", pick(r, propHashes)))
		}
		if r.IntN(3) == 0 {
			var cm []string
			if r.IntN(2) == 0 {
				cm = append(cm, fmt.Sprintf("labels: {app: %s, tier: %s}", pick(r, propLabels), pick(r, propLabels)))
				if r.IntN(2) == 0 {
					cm[0] = fmt.Sprintf("labels: {app: %s}", pick(r, propLabels))
				}
			}
			if r.IntN(2) == 0 {
				cm = append(cm, fmt.Sprintf("name: %q", pick(r, propNames)))
			}
			if r.IntN(3) == 0 || len(cm) == 0 {
				cm = append(cm, fmt.Sprintf("image: %q", pick(r, propImages)))
			}
			parts = append(parts, "container: {"+strings.Join(cm, ", ")+"}")
		}
		if len(parts) > 0 {
			return "{" + strings.Join(parts, ", ") + "}"
		}
	}
}

func propIndexConfig(r *rand.Rand) string {
	var b strings.Builder
	b.WriteString("sts: {mode: local}\nroles: [{name: app}]\nidentity_providers:\n")
	for _, p := range []string{"p1", "p2"} {
		fmt.Fprintf(&b, "  - {name: %s, issuer: \"https://%s.example\", audiences: [a], jwks_file: /nonexistent}\n", p, p)
	}
	b.WriteString("clients:\n")
	for i := range 1 + r.IntN(30) {
		fmt.Fprintf(&b, "  - {name: c%d, match: %s, roles: [app]}\n", i, propMatch(r))
	}
	return b.String()
}

// propCaller is a random caller and the record of which lazy attributes
// were asked for.
type propCaller struct {
	c                  *Caller
	uid, proc, ctr, jw int
}

func newPropCaller(r *rand.Rand) *propCaller {
	pc := &propCaller{}
	c := &Caller{}
	if r.IntN(8) > 0 {
		a := netip.MustParseAddr(pick(r, propAddrs))
		c.Addr = a
	}
	switch r.IntN(5) {
	case 0:
		c.Token, c.HasToken = pick(r, propTokens), true
	case 1:
		c.Token, c.HasToken = "jwt-or-unknown", true
	}
	if r.IntN(6) > 0 {
		uid, err := uint32(1+r.IntN(4)), error(nil)
		if r.IntN(6) == 0 {
			err = errors.New("no uid")
		}
		c.UID = func() (uint32, error) { pc.uid++; return uid, err }
	}
	if r.IntN(6) > 0 {
		p := &Process{PID: 7, Unit: pick(r, []string{"a.service", "b.service", "ab.service", ""}),
			UserUnit: pick(r, []string{"a.service", "x.service"}), Cgroup: pick(r, propCgroups),
			Exe: pick(r, []string{"/usr/bin/a", "/usr/bin/b", ""}), ExeSHA256: pick(r, append([]string{""}, propHashes...))}
		var err error
		if r.IntN(6) == 0 {
			p, err = nil, errors.New("no process")
		}
		c.Process = func() (*Process, error) { pc.proc++; return p, err }
	}
	if r.IntN(6) > 0 {
		ctr := &Container{Name: pick(r, []string{"web", "web-1", "db"}), Image: pick(r, []string{"example/web:1", "other:2"}),
			ImageID: "sha256:abc", Labels: map[string]string{}}
		for _, k := range []string{"app", "tier", "other"} {
			if r.IntN(3) > 0 {
				ctr.Labels[k] = pick(r, propLabels)
			}
		}
		var err error
		if r.IntN(6) == 0 {
			ctr, err = nil, errors.New("not a container")
		}
		c.Container = func() (*Container, error) { pc.ctr++; return ctr, err }
	}
	if c.HasToken && r.IntN(4) > 0 {
		j := &JWT{Provider: pick(r, []string{"p1", "p2"}), Subject: pick(r, []string{"s1", "s2", "s3"}),
			Claims: map[string]any{"ns": pick(r, []string{"prod", "pre", "dev"})}}
		var err error
		if r.IntN(5) == 0 {
			j, err = nil, errors.New("bad signature")
		}
		c.JWT = func() (*JWT, error) { pc.jw++; return j, err }
	}
	pc.c = c
	return pc
}

func (pc *propCaller) asked() string {
	return fmt.Sprintf("uid:%v process:%v container:%v jwt:%v", pc.uid > 0, pc.proc > 0, pc.ctr > 0, pc.jw > 0)
}

func (pc *propCaller) reset() { pc.uid, pc.proc, pc.ctr, pc.jw = 0, 0, 0, 0 }

func TestIndexAgreesWithScan(t *testing.T) {
	for seed := range uint64(400) {
		checkIndexSeed(t, seed)
	}
}

// FuzzIndexAgreesWithScan explores more configs and callers than the
// test's fixed seeds.
func FuzzIndexAgreesWithScan(f *testing.F) {
	f.Add(uint64(2))
	f.Fuzz(func(t *testing.T, seed uint64) { checkIndexSeed(t, seed) })
}

// checkIndexSeed draws a config and 40 callers from seed and compares the
// index with the scan for each.
func checkIndexSeed(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 16))
	yml := propIndexConfig(r)
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("seed %d: %v\n%s", seed, err, yml)
	}
	if err := cfg.Resolve(func(string) (string, bool) { return "", false }, nil); err != nil {
		t.Fatal(err)
	}
	st := compile(cfg)
	for k := range 40 {
		pc := newPropCaller(r)
		want, wantKind := scanIdentify(st, pc.c)
		wantAsked := pc.asked()
		pc.reset()
		got, gerr := st.identify(pc.c)
		gotKind := Kind(0)
		if gerr != nil {
			gotKind = gerr.Kind
		}
		if got != want || gotKind != wantKind {
			t.Fatalf("seed %d caller %d: index says %q (%v), scan says %q (%v)\n%s", seed, k, nameOf(got), gotKind, nameOf(want), wantKind, yml)
		}
		if a := pc.asked(); a != wantAsked {
			t.Fatalf("seed %d caller %d: index asked for %s, scan for %s\n%s", seed, k, a, wantAsked, yml)
		}
		ex, err := ExplainTrust(cfg, pc.c, "")
		if err != nil {
			t.Fatalf("seed %d caller %d: %v\n%s", seed, k, err, yml)
		}
		if ex.Client != nameOf(want) {
			t.Fatalf("seed %d caller %d: explain says %q, scan %q", seed, k, ex.Client, nameOf(want))
		}
	}
}

func sha256Of(s string) [32]byte { return sha256.Sum256([]byte(s)) }
