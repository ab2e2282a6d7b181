package agent

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/credsidecar/credsidecar/config"
)

// ClientCheck is one client of the trust config as tried for a caller.
type ClientCheck struct {
	// Client is the client's name; Line its entry's line in the config.
	Client string
	Line   int
	// Matched is true for the client the caller is.
	Matched bool
	// Failed names the match condition that did not hold: "token",
	// "jwt", "source_cidrs", "uids", or a workload key ("systemd_unit",
	// "systemd_user_unit", "cgroup", "exe", "exe_sha256", "container");
	// "" when it matched.
	Failed string
	// Why says how it failed, e.g. "address 10.0.0.5 is not in
	// 169.254.170.10/32". It never holds a token.
	Why string
}

// Explanation is the trust decision for a caller and a role, condition by
// condition: what `credsidecar explain` prints.
type Explanation struct {
	// Clients are the clients tried, in file order, up to and including
	// the one that matched (all of them when none did).
	Clients []ClientCheck
	// Client is the client the caller is ("" when none).
	Client string
	// Role is the role asked for, or the client's default role when none
	// was named.
	Role string
	// RoleAllowed is true when Client may have Role and Role exists.
	RoleAllowed bool
	// Refusal is the error the agent answers before any STS call (no
	// client, a token matching no client, a role not allowed); nil when the
	// caller is trusted for Role.
	Refusal *Error
	// Chain are the requests the agent would send its source, first hop
	// first: one for a plain role, the via roles' first for a chained one.
	// Via is nil in each: a later hop signs with the earlier hop's session.
	Chain []Request
}

// ExplainTrust runs the agent's trust decision on cfg for caller c asking
// for roleName ("" = its default role) and reports each condition. The
// decision is the agent's own (the same compiled trust config and identify);
// the per-client reasons are derived beside it, and an error reports the
// (never expected) case where the two disagree rather than print a wrong
// story.
func ExplainTrust(cfg *config.Config, c *Caller, roleName string) (*Explanation, error) {
	st := compile(cfg)
	compiled := make(map[string]*client, len(st.clients))
	for _, cl := range st.clients {
		compiled[cl.name] = cl
	}
	ex := &Explanation{}
	var digest [32]byte
	if c.HasToken {
		digest = c.tokenDigest() // as identify looks tokens up
	}
	_, tokenKnown := st.byToken[digest]
	// A token no client holds may be a JWT that jwt clients take.
	var j *JWT
	jwtErr := errors.New("the token is a client's own token (match.token), not checked as a JWT")
	if c.HasToken && !tokenKnown && st.jwt.n > 0 {
		jwtErr = errors.New("the front end verifies no JWTs")
		if c.JWT != nil {
			j, jwtErr = c.JWT()
		}
		tokenKnown = jwtErr == nil && len(st.jwtMatching(j)) > 0
	}
	uid, uidErr := uint32(0), errors.New("no uid given")
	if c.UID != nil {
		uid, uidErr = c.UID()
	}
	var found *client
	wa := attrs{c: c}
	// passed is a client holding the caller's token whose other conditions
	// failed: from there on, no token-less client may match.
	passed := ""
	for i := range cfg.Clients {
		cc := &cfg.Clients[i]
		chk := ClientCheck{Client: cc.Name, Line: cc.Line}
		cl := compiled[cc.Name]
		switch {
		case cl == nil:
			chk.Failed, chk.Why = "token", "its token reference could not be resolved, so it matches no caller"
		case cl.tokenHash != nil && !c.HasToken:
			chk.Failed, chk.Why = "token", "the caller presents no token"
		case cl.tokenHash != nil && subtle.ConstantTimeCompare(cl.tokenHash[:], digest[:]) != 1:
			chk.Failed, chk.Why = "token", "the caller's token is not this client's"
		case cl.jwt != nil && !c.HasToken:
			chk.Failed, chk.Why = "jwt", "the caller presents no token"
		case cl.jwt != nil && jwtErr != nil:
			chk.Failed, chk.Why = "jwt", fmt.Sprintf("the token is not accepted as a JWT: %v", jwtErr)
		case cl.jwt != nil && cl.jwt.check(j) != "":
			chk.Failed, chk.Why = "jwt", cl.jwt.check(j)
		case len(cl.cidrs) > 0 && !containsAddr(cl.cidrs, c.Addr):
			chk.Failed, chk.Why = "source_cidrs", fmt.Sprintf("address %s is not in %s", addrString(c), prefixes(cl))
		case len(cl.uids) > 0 && uidErr != nil:
			chk.Failed, chk.Why = "uids", fmt.Sprintf("the caller's uid is unknown (%v); uids %s", uidErr, uids(cl.uids))
		case len(cl.uids) > 0 && !slices.Contains(cl.uids, uid):
			chk.Failed, chk.Why = "uids", fmt.Sprintf("uid %d is not among %s", uid, uids(cl.uids))
		case cl.wl != nil && workloadFails(cl.wl, &wa, &chk):
		case cl.tokenHash == nil && cl.jwt == nil && c.HasToken && passed != "":
			chk.Failed, chk.Why = "token", fmt.Sprintf("the caller's token belongs to client %q, listed before this one, whose other conditions failed; a presented token never falls back to address or uid trust", passed)
		case c.HasToken && !tokenKnown:
			// A presented token that no client holds is refused outright,
			// whatever the address or uid would match.
			chk.Failed, chk.Why = "token", "its other conditions hold, but the caller's token matches no client, and such a caller is refused without falling back to address or uid trust"
		default:
			chk.Matched = true
		}
		ex.Clients = append(ex.Clients, chk)
		if !chk.Matched && passed == "" && cl != nil && cl.tokenHash != nil && c.HasToken && subtle.ConstantTimeCompare(cl.tokenHash[:], digest[:]) == 1 {
			passed = cc.Name
		}
		if !chk.Matched && passed == "" && cl != nil && cl.jwt != nil && j != nil && cl.jwt.check(j) == "" {
			passed = cc.Name
		}
		if chk.Matched {
			found = cl
			break
		}
	}

	// The agent's own decision, which the explanation must agree with.
	agentCl, ierr := st.identify(c)
	if (agentCl == nil) != (found == nil) || (agentCl != nil && agentCl != found) {
		return nil, fmt.Errorf("explain trust: the explanation (client %q) disagrees with the agent (client %q, %v)", nameOf(found), nameOf(agentCl), ierr)
	}
	if ierr != nil {
		ex.Refusal = ierr
		return ex, nil
	}
	ex.Client = agentCl.name
	ex.Role = roleName
	if ex.Role == "" {
		ex.Role = agentCl.defaultRole()
	}
	r := st.roles[ex.Role]
	if r == nil || !agentCl.allows(ex.Role) {
		// The agent's answer (one message for "no such role" and "not
		// yours").
		ex.Refusal = errorf(KindRoleNotAllowed, nil, "no such role for this caller: %q", ex.Role)
		return ex, nil
	}
	ex.RoleAllowed = true
	var hops []*role
	for h := r; h != nil; h = h.via {
		hops = append(hops, h)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		req := hops[i].req
		req.SessionName = st.session(agentCl, hops[i], c).name
		ex.Chain = append(ex.Chain, req)
	}
	return ex, nil
}

func nameOf(cl *client) string {
	if cl == nil {
		return ""
	}
	return cl.name
}

func addrString(c *Caller) string {
	if !c.Addr.IsValid() {
		return "(none given)"
	}
	return c.Addr.String()
}

func prefixes(cl *client) string {
	out := make([]string, len(cl.cidrs))
	for i, p := range cl.cidrs {
		out[i] = p.String()
	}
	return "[" + strings.Join(out, ", ") + "]"
}

func uids(us []uint32) string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = strconv.FormatUint(uint64(u), 10)
	}
	return "[" + strings.Join(out, ", ") + "]"
}

// workloadFails fills chk and returns true when a workload condition of m
// fails for the caller.
func workloadFails(m *workloadMatch, a *attrs, chk *ClientCheck) bool {
	key, why := m.check(a)
	if key == "" {
		return false
	}
	chk.Failed, chk.Why = key, why
	return true
}
