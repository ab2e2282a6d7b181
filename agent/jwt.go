package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/glob"
	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// JWT is a caller's verified bearer JWT as the agent sees it. Front ends
// hand out one *JWT per verified token and reuse it while the token is
// cached, so the session memo inside saves re-rendering templates.
type JWT struct {
	// Provider is the identity_providers entry that verified it.
	Provider string
	// Subject is its sub.
	Subject string
	// Claims are all its claims (nested maps for objects).
	Claims map[string]any

	// memo: the matching clients per compiled state, and the session
	// ids rendered for this token per state, client and role.
	memo sync.Map // memoKey -> []*client or sessionID
	// lastMatch and lastSession are memo's latest stored entries of each
	// kind, read with no hashing: a token's requests nearly all come under
	// one compiled state, client and role (the two sync.Map loads of a
	// struct key were ~75 ns of each cached JWT request under perf). A
	// hit in memo does not replace them, so a token used for two roles in
	// turn costs a map load, not an allocation per request.
	lastMatch   atomic.Pointer[matchMemo]
	lastSession atomic.Pointer[sessionMemo]
}

// matchMemo is one jwtMatching answer; sessionMemo one session id.
// Both are immutable once stored.
type matchMemo struct {
	st      *state
	clients []*client
}

type sessionMemo struct {
	k  memoKey
	id sessionID
}

type memoKey struct {
	st *state
	cl *client
	r  *role
}

// jwtMatch is a compiled match.jwt.
type jwtMatch struct {
	provider string
	subject  string // glob; "" = any
	claims   []claimGlob
}

// claimGlob is one leaf of match.jwt.claims: a path into the token's
// claims and the glob its value must match.
type claimGlob struct {
	path []string
	glob string
}

func compileJWTMatch(m *config.JWTMatch) *jwtMatch {
	jm := &jwtMatch{provider: m.Provider, subject: m.Subject}
	var walk func(prefix []string, v map[string]any)
	walk = func(prefix []string, v map[string]any) {
		for k, val := range v {
			p := append(append([]string{}, prefix...), k)
			switch x := val.(type) {
			case string:
				jm.claims = append(jm.claims, claimGlob{path: p, glob: x})
			case map[string]any:
				walk(p, x)
			}
		}
	}
	walk(nil, m.Claims)
	sort.Slice(jm.claims, func(a, b int) bool {
		return strings.Join(jm.claims[a].path, "\x00") < strings.Join(jm.claims[b].path, "\x00")
	})
	return jm
}

// matches reports whether j satisfies m (the request path: no allocation).
func (m *jwtMatch) matches(j *JWT) bool {
	if j.Provider != m.provider || (m.subject != "" && !glob.Match(m.subject, j.Subject)) {
		return false
	}
	for _, c := range m.claims {
		v, ok := claimAt(j.Claims, c.path)
		if !ok || !claimMatches(c.glob, v) {
			return false
		}
	}
	return true
}

// check returns "" when j matches, else the reason (for explain).
func (m *jwtMatch) check(j *JWT) string {
	if j.Provider != m.provider {
		return fmt.Sprintf("the token is from identity provider %q, not %q", j.Provider, m.provider)
	}
	if m.subject != "" && !glob.Match(m.subject, j.Subject) {
		return fmt.Sprintf("subject %q does not match %q", j.Subject, m.subject)
	}
	for _, c := range m.claims {
		v, ok := claimAt(j.Claims, c.path)
		if !ok {
			return fmt.Sprintf("the token has no claim %s", strings.Join(c.path, "."))
		}
		if !claimMatches(c.glob, v) {
			return fmt.Sprintf("claim %s %s does not match %q", strings.Join(c.path, "."), claimString(v), c.glob)
		}
	}
	return ""
}

func claimAt(claims map[string]any, path []string) (any, bool) {
	var cur any = claims
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// claimMatches: a string (or number, or boolean) value must match the
// glob; a list matches when one of its elements does.
func claimMatches(pattern string, v any) bool {
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if claimMatches(pattern, e) {
				return true
			}
		}
		return false
	case map[string]any, nil:
		return false
	}
	return glob.Match(pattern, claimString(v))
}

func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%f", x), "0"), ".")
	}
	return fmt.Sprint(v)
}

// jwtMatching returns the JWT clients, in file order, whose jwt condition
// holds for j: computed once per token and compiled state, kept in j.
func (st *state) jwtMatching(j *JWT) []*client {
	if m := j.lastMatch.Load(); m != nil && m.st == st {
		return m.clients
	}
	mk := memoKey{st: st}
	if v, ok := j.memo.Load(mk); ok {
		return v.([]*client)
	}
	out := st.jwt.matching(j)
	j.memo.Store(mk, out)
	j.lastMatch.Store(&matchMemo{st: st, clients: out})
	return out
}

// memoSession returns the session id memoized for mk, if any.
func (j *JWT) memoSession(mk memoKey) (sessionID, bool) {
	if m := j.lastSession.Load(); m != nil && m.k == mk {
		return m.id, true
	}
	v, ok := j.memo.Load(mk)
	if !ok {
		return sessionID{}, false
	}
	return v.(sessionID), true
}

// storeSession memoizes id for mk.
func (j *JWT) storeSession(mk memoKey, id sessionID) {
	j.memo.Store(mk, id)
	j.lastSession.Store(&sessionMemo{k: mk, id: id})
}

// tokenDigest is the SHA-256 of c.Token, the front end's when it has one.
func (c *Caller) tokenDigest() [32]byte {
	if c.TokenDigest != nil {
		return *c.TokenDigest
	}
	return sha256.Sum256([]byte(c.Token))
}

// callerJWT returns the caller's verified JWT, or nil.
func callerJWT(c *Caller) *JWT {
	if c == nil || c.JWT == nil || !c.HasToken {
		return nil
	}
	j, err := c.JWT()
	if err != nil {
		return nil
	}
	return j
}

// defaultJWTSessionName names a JWT caller's session when its role keeps
// the default session_name: the client and the token's service account
// (NAMESPACE.NAME for a Kubernetes token) or subject.
func defaultJWTSessionName(client string, j *JWT) string {
	who := j.Subject
	if k, ok := j.Claims["kubernetes.io"].(map[string]any); ok {
		ns, _ := k["namespace"].(string)
		sa, _ := k["serviceaccount"].(map[string]any)
		name, _ := sa["name"].(string)
		if ns != "" && name != "" {
			who = ns + "." + name
		}
	}
	return client + "@" + who
}

// renderTags renders r's session tags for d: constant tags as configured,
// template values per caller, cut and cleaned to what STS accepts.
func renderTags(r *role, d sessionData) []Tag {
	if len(r.cfg.TagTemplates) == 0 {
		return nil
	}
	out := make([]Tag, len(r.req.Tags))
	copy(out, r.req.Tags)
	for i, t := range out {
		tmpl := r.cfg.TagTemplates[t.Key]
		if tmpl == nil {
			continue
		}
		var b strings.Builder
		if tmpl.Execute(&b, d) != nil {
			b.Reset()
		}
		out[i].Value = stsrules.SanitizeTagValue(b.String())
	}
	return out
}

// tagsDigest names a rendered tag set in a session key.
func tagsDigest(tags []Tag) string {
	h := sha256.New()
	for _, t := range tags {
		h.Write([]byte(t.Key))
		h.Write([]byte{0})
		h.Write([]byte(t.Value))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func usesJWTFields(tmpl string) bool {
	return strings.Contains(tmpl, ".Subject") || strings.Contains(tmpl, ".Claims")
}
