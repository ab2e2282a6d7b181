package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// state is a config compiled for the request path. It is immutable; a
// reload builds a new one and swaps a pointer.
type state struct {
	cfg     *config.Config
	clients []*client
	roles   map[string]*role
	// byToken indexes token-bearing clients by token digest (file order
	// within each list); tokenless lists the clients without a token
	// condition. identify walks the two in file order, so it costs the same
	// with ten clients or ten thousand.
	byToken   map[[32]byte][]*client
	tokenless []*client
	// jwtClients are the clients whose match has jwt, in file order.
	jwtClients []*client
}

type client struct {
	idx         int // position in the file: first match wins
	name        string
	tokenHash   []byte // sha256 of the token; nil when the match has none
	cidrs       []netip.Prefix
	uids        []uint32
	wl          *workloadMatch // nil when the match has no workload condition
	jwt         *jwtMatch      // nil when the match has no jwt
	roles       map[string]bool
	defaultRole string
	// sessionKeys memoizes the session key and name per role when the
	// role's session_name does not depend on the caller's uid or address.
	sessions map[string]sessionID
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
}

func compile(cfg *config.Config) *state {
	st := &state{cfg: cfg, roles: make(map[string]*role, len(cfg.Roles)), byToken: map[[32]byte][]*client{}}
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
		c := &client{idx: len(st.clients), name: cc.Name, uids: cc.Match.UIDs, roles: map[string]bool{}, sessions: map[string]sessionID{}, wl: compileWorkload(cc.Match.Workload)}
		if cc.Match.JWT != nil {
			c.jwt = compileJWTMatch(cc.Match.JWT)
		}
		if t := cc.Match.Token; t != nil {
			switch {
			case t.SHA256 != "":
				c.tokenHash, _ = hex.DecodeString(t.SHA256)
			case t.Value != "":
				h := sha256.Sum256([]byte(t.Value))
				c.tokenHash = h[:]
			default:
				// An unresolved token must never match, least of all the
				// empty token: the client is left out.
				continue
			}
		}
		for _, p := range cc.Match.SourceCIDRs {
			c.cidrs = append(c.cidrs, p.Prefix)
		}
		for _, rn := range cc.Roles {
			c.roles[rn] = true
		}
		if len(cc.Roles) > 0 {
			c.defaultRole = cc.Roles[0]
		}
		for rn := range c.roles {
			r := st.roles[rn]
			if r == nil || chainVaries(r, c.jwt != nil) {
				continue
			}
			c.sessions[rn] = sessionFor(r, sessionData{Client: c.name, Role: rn})
		}
		st.clients = append(st.clients, c)
		if c.tokenHash != nil {
			d := [32]byte(c.tokenHash)
			st.byToken[d] = append(st.byToken[d], c)
		} else if c.jwt != nil {
			st.jwtClients = append(st.jwtClients, c)
		} else {
			st.tokenless = append(st.tokenless, c)
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
	var b strings.Builder
	if r.cfg.SessionTemplate == nil || r.cfg.SessionTemplate.Execute(&b, d) != nil {
		return stsrules.SanitizeSessionName(d.Client)
	}
	return stsrules.SanitizeSessionName(b.String())
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
func (st *state) identify(c *Caller) (*client, *Error) {
	var withToken []*client
	if c.HasToken {
		if len(st.byToken) > 0 {
			// (Skipped when no client holds a token: a JWT-only trust
			// config pays no digest here.)
			withToken = st.byToken[c.tokenDigest()]
		}
		if len(withToken) == 0 {
			if len(st.jwtClients) == 0 || c.JWT == nil {
				return nil, errBadToken
			}
			// No client holds the token itself: it may be a JWT that a
			// jwt client accepts. One that fails verification, or that
			// no client's jwt condition takes, is a bad token (401).
			j, err := c.JWT()
			if err != nil {
				return nil, &Error{Kind: KindBadToken, Msg: errBadToken.Msg, Err: err}
			}
			if withToken = st.jwtMatching(j); len(withToken) == 0 {
				return nil, errBadToken
			}
		}
	}
	var uid uint32
	var uidDone, uidOK bool
	wa := attrs{c: c}
	i, j := 0, 0
	for i < len(withToken) || j < len(st.tokenless) {
		var cl *client
		if j >= len(st.tokenless) || (i < len(withToken) && withToken[i].idx < st.tokenless[j].idx) {
			cl, i = withToken[i], i+1
		} else {
			if c.HasToken && i > 0 {
				// Past a client holding the caller's token: no fallback.
				j = len(st.tokenless)
				continue
			}
			cl, j = st.tokenless[j], j+1
		}
		if len(cl.cidrs) > 0 && !containsAddr(cl.cidrs, c.Addr) {
			continue
		}
		if len(cl.uids) > 0 {
			if !uidDone {
				uidDone = true
				if c.UID != nil {
					if u, err := c.UID(); err == nil {
						uid, uidOK = u, true
					}
				}
			}
			if !uidOK || !slices.Contains(cl.uids, uid) {
				continue
			}
		}
		if cl.wl != nil {
			if key, _ := cl.wl.check(&wa); key != "" {
				continue
			}
		}
		return cl, nil
	}
	if c.HasToken {
		return nil, errBadToken
	}
	return nil, errNoClient
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
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
	if id, ok := cl.sessions[r.cfg.Name]; ok {
		return id
	}
	var j *JWT
	if cl.jwt != nil {
		if j = callerJWT(c); j != nil && !chainVaries(r, false) {
			// The session depends on the token alone: memoized with it.
			mk := memoKey{st: st, cl: cl, r: r}
			if v, ok := j.memo.Load(mk); ok {
				return v.(sessionID)
			}
			id := sessionFor(r, jwtSessionData(cl, r, j, c))
			j.memo.Store(mk, id)
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
	return sessionID{key: key, name: name, tags: tags}
}
