package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// state is a config compiled for the request path. It is immutable; a
// reload builds a new one and swaps a pointer.
type state struct {
	cfg     *config.Config
	clients []*client // in file order
	roles   map[string]*role
	// byToken indexes token-bearing clients by token digest: the first in
	// file order, the others holding the same token chained after it
	// (client.sameToken). A slice per token cost 32 bytes a client more.
	byToken map[[32]byte]*client
	// plain finds the candidates among the clients with neither a token nor
	// a jwt condition (index.go).
	plain index
	// jwt finds the candidates among the clients whose match has jwt.
	jwt jwtIndex
}

type client struct {
	idx       int // position in the file: first match wins
	name      string
	tokenHash *[32]byte // sha256 of the token; nil when the match has none
	// sameToken is the next client, in file order, holding the same token.
	sameToken *client
	// cidrs, uids and roles are the config's own slices (never modified).
	cidrs []config.Prefix
	uids  []uint32
	wl    *workloadMatch // nil when the match has no workload condition
	jwt   *jwtMatch      // nil when the match has no jwt
	// roles are the client's roles, the first its default (defaultRole):
	// few, so a slice (a map per client cost hundreds of bytes each).
	roles []string
	// sessions[i] memoizes the session of roles[i] when that role's
	// session does not depend on the caller (key "" otherwise); nil when
	// none does.
	sessions []sessionID
}

// defaultRole is the client's first role ("" if it has none).
func (cl *client) defaultRole() string {
	if len(cl.roles) == 0 {
		return ""
	}
	return cl.roles[0]
}

// allows reports whether the client may have role rn.
func (cl *client) allows(rn string) bool { return slices.Contains(cl.roles, rn) }

// memoized returns the client's session of role rn when it is the same
// for every caller of the client (the warm-up's and the cached path's).
func (cl *client) memoized(rn string) (sessionID, bool) {
	for i, r := range cl.roles {
		if r == rn && i < len(cl.sessions) {
			return cl.sessions[i], cl.sessions[i].key != ""
		}
	}
	return sessionID{}, false
}

type sessionID struct {
	key, name string
	// tags are the rendered session tags when the role's tags are
	// templates (nil: the role's constant tags).
	tags []Tag
}

type role struct {
	cfg *config.Role
	// fingerprint hashes the role's whole definition: a reload that changes
	// it gives its sessions new keys, and the old ones are dropped.
	fingerprint string
	via         *role
	// perCaller: the session name or a tag template uses .UID, .Addr or
	// a workload attribute.
	perCaller bool
	// needs: which lazy workload attributes the session name or a tag
	// template reads.
	needs templateNeeds
	// jwtFields: the session name or a tag template uses .Subject or
	// .Claims; defaultName: the session name is the default, which names
	// a JWT caller's service account. Either makes JWT callers' sessions
	// per caller.
	jwtFields, defaultName bool
	req                    Request // template of the source request, without SessionName/Via
	// renders are the front ends' render functions seen for this role's
	// sessions, by slot, and lastSlot 1 + the slot rendered last (0:
	// none): a new session of the role is rendered into it before it is
	// published (render.go).
	renders  [RenderSlots]atomic.Pointer[renderFunc]
	lastSlot atomic.Int32
}

func compile(cfg *config.Config) *state {
	st := &state{cfg: cfg, roles: make(map[string]*role, len(cfg.Roles)), byToken: map[[32]byte]*client{}}
	for i := range cfg.Roles {
		rc := &cfg.Roles[i]
		r := &role{cfg: rc, perCaller: usesCallerDetails(rc.SessionName), jwtFields: usesJWTFields(rc.SessionName), defaultName: rc.SessionName == config.DefaultSessionName, needs: workloadNeeds(rc.SessionName)}
		for k := range rc.TagTemplates {
			r.perCaller = r.perCaller || usesCallerDetails(rc.Tags[k])
			r.jwtFields = r.jwtFields || usesJWTFields(rc.Tags[k])
			n := workloadNeeds(rc.Tags[k])
			r.needs.proc, r.needs.container = r.needs.proc || n.proc, r.needs.container || n.container
		}
		r.req = Request{
			RoleARN:              rc.ARN,
			Duration:             rc.Duration.D(),
			ExternalID:           rc.ExternalID,
			SourceIdentity:       rc.SourceIdentity,
			PolicyARNs:           rc.PolicyARNs,
			TransitiveTagKeys:    rc.TransitiveTagKeys,
			WebIdentityTokenFile: rc.WebIdentityTokenFile,
		}
		if rc.SessionPolicy != nil {
			r.req.SessionPolicy = rc.SessionPolicy.JSON
		}
		for k, v := range rc.Tags {
			r.req.Tags = append(r.req.Tags, Tag{Key: k, Value: v})
		}
		sort.Slice(r.req.Tags, func(a, b int) bool { return r.req.Tags[a].Key < r.req.Tags[b].Key })
		st.roles[rc.Name] = r
	}
	for _, r := range st.roles {
		if r.cfg.Via != "" {
			r.via = st.roles[r.cfg.Via]
		}
	}
	for _, r := range st.roles {
		r.fingerprint = fingerprint(r, cfg)
	}
	for i := range cfg.Clients {
		cc := &cfg.Clients[i]
		c := &client{idx: len(st.clients), name: cc.Name, uids: cc.Match.UIDs, cidrs: cc.Match.SourceCIDRs, roles: cc.Roles, wl: compileWorkload(&cc.Match.Workload)}
		if cc.Match.JWT != nil {
			c.jwt = compileJWTMatch(cc.Match.JWT)
		}
		if t := cc.Match.Token; t != nil {
			switch {
			case t.SHA256 != "":
				// Validated as 64 hex digits; anything else matches no caller.
				var h [32]byte
				if n, err := hex.Decode(h[:], []byte(t.SHA256)); err != nil || n != len(h) {
					continue
				}
				c.tokenHash = &h
			case t.Value != "":
				h := sha256.Sum256([]byte(t.Value))
				c.tokenHash = &h
			default:
				// An unresolved token must never match, least of all the
				// empty token: the client is left out.
				continue
			}
		}
		for j, rn := range c.roles {
			r := st.roles[rn]
			if r == nil || chainVaries(r, c.jwt != nil) {
				continue
			}
			if c.sessions == nil {
				c.sessions = make([]sessionID, len(c.roles))
			}
			if k := slices.Index(c.roles, rn); k < j {
				c.sessions[j] = c.sessions[k] // a role listed twice
				continue
			}
			c.sessions[j] = sessionFor(r, sessionData{Client: c.name, Role: rn})
		}
		st.clients = append(st.clients, c)
		switch {
		case c.tokenHash != nil:
			if first := st.byToken[*c.tokenHash]; first != nil {
				last := first
				for last.sameToken != nil {
					last = last.sameToken
				}
				last.sameToken = c
			} else {
				st.byToken[*c.tokenHash] = c
			}
		case c.jwt != nil:
			st.jwt.add(c)
		default:
			st.plain.add(c)
		}
	}
	return st
}

// chainVaries reports whether r's session (or a hop's before it) differs
// between callers of one client: then it cannot be memoized per client.
func chainVaries(r *role, jwtClient bool) bool {
	for ; r != nil; r = r.via {
		if r.perCaller || (jwtClient && (r.jwtFields || r.defaultName)) {
			return true
		}
	}
	return false
}

// fingerprint covers every field of a role (and of its chain) that shapes
// the session; the session name is appended per caller.
func fingerprint(r *role, cfg *config.Config) string {
	h := sha256.New()
	for cur := r; cur != nil; cur = cur.via {
		c := *cur.cfg
		c.SessionTemplate = nil
		c.TagTemplates = nil
		c.Line = 0
		b, _ := json.Marshal(c)
		h.Write(b)
		h.Write([]byte{0})
	}
	// Sessions of another source (mode, account, endpoint) are not ours.
	h.Write([]byte(cfg.STS.SourceID()))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func usesCallerDetails(tmpl string) bool {
	n := workloadNeeds(tmpl)
	return strings.Contains(tmpl, ".UID") || strings.Contains(tmpl, ".Addr") || n.proc || n.container
}

// sessionData is what session_name and tag templates see.
type sessionData struct {
	Client string
	Role   string
	UID    string
	Addr   string
	// Unit, Cgroup and Exe are the host process's (attest/proc); Container
	// is the Docker container's name. Empty when not identified.
	Unit      string
	Cgroup    string
	Exe       string
	Container string
	// Subject and Claims are the caller's verified JWT's ("" and nil
	// when it was identified otherwise).
	Subject string
	Claims  map[string]any
	// jwtDefault is the session name of a JWT caller whose role keeps
	// the default session_name.
	jwtDefault string
}

func sessionName(r *role, d sessionData) string {
	if r.defaultName && d.jwtDefault != "" {
		return stsrules.SanitizeSessionName(d.jwtDefault)
	}
	name, ok := r.cfg.RenderSessionName(d.Client, d.Role, d)
	if !ok {
		name = d.Client
	}
	return stsrules.SanitizeSessionName(name)
}

// Errors of identify, allocated once: refusals are common and cheap.
var (
	errBadToken = errorf(KindBadToken, nil, "the authorization token matches no client")
	errNoClient = errorf(KindNoClient, nil, "the caller matches no client of the trust config")
)

// identify returns the first client, in file order, whose match holds for
// the caller. A presented token is looked up by its SHA-256 digest: the
// lookup's timing can only tell digests apart, which says nothing usable
// about tokens. A presented token never falls back to address or uid
// trust: when it matches no client, or every client it matches fails its
// other conditions, the caller is refused (401). Token-less clients listed
// before the first client holding that token still win, as file order says.
// Exact-valued conditions are indexed (index.go): the cost does not grow
// with the number of such clients.
func (st *state) identify(c *Caller) (*client, *Error) {
	u := uidMemo{c: c}
	wa := attrs{c: c}
	if !c.HasToken {
		if cl := st.plain.first(c, math.MaxInt, &u, &wa); cl != nil {
			return cl, nil
		}
		return nil, errNoClient
	}
	var holder *client
	if len(st.byToken) > 0 {
		// (Skipped when no client holds a token: a JWT-only trust
		// config pays no digest here.)
		holder = st.byToken[c.tokenDigest()]
	}
	if holder != nil {
		// Token-less clients only before the first client holding the
		// token: past it, no fallback.
		if cl := st.plain.first(c, holder.idx, &u, &wa); cl != nil {
			return cl, nil
		}
		for cl := holder; cl != nil; cl = cl.sameToken {
			if cl.holds(c, &u, &wa) {
				return cl, nil
			}
		}
		return nil, errBadToken
	}
	if st.jwt.n == 0 || c.JWT == nil {
		return nil, errBadToken
	}
	// No client holds the token itself: it may be a JWT that a jwt client
	// accepts. One that fails verification, or that no client's jwt
	// condition takes, is a bad token (401).
	j, err := c.JWT()
	if err != nil {
		return nil, &Error{Kind: KindBadToken, Msg: errBadToken.Msg, Err: err}
	}
	withToken := st.jwtMatching(j)
	if len(withToken) == 0 {
		return nil, errBadToken
	}
	// The same for the clients taking the JWT.
	if cl := st.plain.first(c, withToken[0].idx, &u, &wa); cl != nil {
		return cl, nil
	}
	for _, cl := range withToken {
		if cl.holds(c, &u, &wa) {
			return cl, nil
		}
	}
	return nil, errBadToken
}

// holds reports whether cl's address, uid and workload conditions hold for
// the caller (its token or jwt condition was checked by the lookup that
// found it), in the order a plain scan would check them, so that the lazy
// attributes are asked for exactly as a scan would.
func (cl *client) holds(c *Caller, u *uidMemo, wa *attrs) bool {
	if len(cl.cidrs) > 0 && !containsAddr(cl.cidrs, c.Addr) {
		return false
	}
	if len(cl.uids) > 0 {
		uid, ok := u.get()
		if !ok || !slices.Contains(cl.uids, uid) {
			return false
		}
	}
	return cl.wl == nil || cl.wl.holds(wa)
}

// uidMemo asks for the caller's uid at most once per trust decision.
type uidMemo struct {
	c        *Caller
	done, ok bool
	uid      uint32
}

func (u *uidMemo) get() (uint32, bool) {
	if !u.done {
		u.done = true
		if u.c.UID != nil {
			if uid, err := u.c.UID(); err == nil {
				u.uid, u.ok = uid, true
			}
		}
	}
	return u.uid, u.ok
}

func containsAddr(ps []config.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// session returns the key and session name of role r for caller cl.
func (st *state) session(cl *client, r *role, c *Caller) sessionID {
	if id, ok := cl.memoized(r.cfg.Name); ok {
		return id
	}
	var j *JWT
	if cl.jwt != nil {
		if j = callerJWT(c); j != nil && !chainVaries(r, false) {
			// The session depends on the token alone: memoized with it.
			mk := memoKey{st: st, cl: cl, r: r}
			if id, ok := j.memoSession(mk); ok {
				return id
			}
			id := sessionFor(r, jwtSessionData(cl, r, j, c))
			j.storeSession(mk, id)
			return id
		}
	}
	return sessionFor(r, jwtSessionData(cl, r, j, c))
}

// jwtSessionData is the template data of caller c (with its JWT j, or nil).
func jwtSessionData(cl *client, r *role, j *JWT, c *Caller) sessionData {
	d := sessionData{Client: cl.name, Role: r.cfg.Name}
	if chainVaries(r, false) {
		d.Addr = c.Addr.String()
		if c.UID != nil {
			if u, err := c.UID(); err == nil {
				d.UID = strconv.FormatUint(uint64(u), 10)
			}
		}
		workloadSessionData(r, c, &d)
	}
	if j != nil {
		d.Subject, d.Claims = j.Subject, j.Claims
		d.jwtDefault = defaultJWTSessionName(cl.name, j)
	}
	return d
}

// workloadSessionData fills the workload attributes the templates of r's
// chain read (only those: each may cost a /proc scan or an API call).
func workloadSessionData(r *role, c *Caller, d *sessionData) {
	var needs templateNeeds
	for hop := r; hop != nil; hop = hop.via {
		needs.proc = needs.proc || hop.needs.proc
		needs.container = needs.container || hop.needs.container
	}
	if needs.proc && c.Process != nil {
		if p, err := c.Process(); err == nil && p != nil {
			d.Unit, d.Cgroup, d.Exe = p.Unit, p.Cgroup, p.Exe
		}
	}
	if needs.container && c.Container != nil {
		if ctr, err := c.Container(); err == nil && ctr != nil {
			d.Container = ctr.Name
		}
	}
}

func sessionFor(r *role, d sessionData) sessionID {
	name := sessionName(r, d)
	key := r.fingerprint + "/" + name
	tags := renderTags(r, d)
	if tags != nil {
		// The rendered tags are part of what makes the session distinct.
		key += "#" + tagsDigest(tags)
	}
	// A chained role's session is distinct per session of its previous hop.
	for hop := r.via; hop != nil; hop = hop.via {
		key += "<" + sessionName(hop, d)
		if ht := renderTags(hop, d); ht != nil {
			key += "#" + tagsDigest(ht)
		}
	}
	// The name is kept as a part of the key: one string per session, not
	// two (every client of a large config memoizes one).
	at := len(r.fingerprint) + 1
	return sessionID{key: key, name: key[at : at+len(name)], tags: tags}
}
