package iampolicy

import (
	"fmt"
	"strings"
)

// Principal is the caller a request is evaluated for.
type Principal struct {
	// Type is "AWS", "Federated", "Service" or "CanonicalUser", or "" for an
	// anonymous caller.
	Type string
	// ARN identifies the caller: a user ARN, an assumed-role session ARN
	// (arn:aws:sts::A:assumed-role/R/S), an OIDC provider ARN or issuer, or
	// a service name.
	ARN string
	// Aliases are other identifiers that name this principal directly, e.g.
	// the role ARN arn:aws:iam::A:role/path/R for an assumed-role session.
	Aliases []string
	// Account is the caller's account ID; a policy naming "123456789012" or
	// "arn:aws:iam::123456789012:root" grants to the whole account.
	Account string
}

// Request is what is being authorised.
type Request struct {
	Principal Principal
	// Action is e.g. "sts:AssumeRole"; matched case-insensitively.
	Action string
	// Resource is the target ARN; "" for a trust policy's implicit resource
	// (the role), which a statement without Resource matches.
	Resource string
	// Context maps condition keys to their values. Keys are matched
	// case-insensitively; a key with no values counts as absent.
	Context map[string][]string
}

// Decision is the outcome of an evaluation.
type Decision int

const (
	// ImplicitDeny means no statement allowed or denied the request.
	ImplicitDeny Decision = iota
	// Allow means some statement allowed it and none denied it.
	Allow
	// ExplicitDeny means a Deny statement matched; it overrides any Allow.
	ExplicitDeny
)

// String returns "implicitDeny", "allow" or "explicitDeny".
func (d Decision) String() string {
	switch d {
	case ImplicitDeny:
		return "implicitDeny"
	case Allow:
		return "allow"
	case ExplicitDeny:
		return "explicitDeny"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// PrincipalMatch says how a statement's Principal named the caller. Values
// are ordered: a larger value is a more specific grant.
type PrincipalMatch int

const (
	// PrincipalNone: the statement has no Principal element (identity and
	// session policies), or the caller was not named.
	PrincipalNone PrincipalMatch = iota
	// PrincipalWildcard: "*" or {"AWS": "*"}.
	PrincipalWildcard
	// PrincipalAccount: the caller's account, by ID or ":root" ARN. For
	// AssumeRole this means the caller's identity policy must also allow.
	PrincipalAccount
	// PrincipalDirect: the caller's ARN or one of its aliases, exactly.
	PrincipalDirect
)

// String returns "none", "wildcard", "account" or "direct".
func (m PrincipalMatch) String() string {
	switch m {
	case PrincipalNone:
		return "none"
	case PrincipalWildcard:
		return "wildcard"
	case PrincipalAccount:
		return "account"
	case PrincipalDirect:
		return "direct"
	}
	return fmt.Sprintf("PrincipalMatch(%d)", int(m))
}

// Result is the outcome of an evaluation and what decided it.
type Result struct {
	Decision Decision
	// Statement decided the request: the first matching Deny, else the
	// matching Allow with the strongest PrincipalMatch (the first one on a
	// tie). Nil for ImplicitDeny.
	Statement *Statement
	// Policy is the index of Statement's policy in the slice passed to
	// Evaluate (0 for Policy.Evaluate), or -1 for ImplicitDeny.
	Policy int
	// PrincipalMatch is, for Allow, the strongest principal match among the
	// matching Allow statements; for ExplicitDeny, the deny's own match.
	PrincipalMatch PrincipalMatch
}

// Evaluate evaluates the policy alone; see Evaluate.
func (p *Policy) Evaluate(r Request) Result {
	return Evaluate([]*Policy{p}, r)
}

// Evaluate evaluates a request against a set of policies that apply
// together: an explicit Deny in any of them wins, otherwise an Allow in any
// of them allows, otherwise the request is implicitly denied. Nil policies
// are skipped. Intersections (session policies, permission boundaries) are
// the caller's job: evaluate each set separately and require Allow from
// each.
func Evaluate(policies []*Policy, r Request) Result {
	ctx := newEvalContext(r.Context)
	action := strings.ToLower(r.Action)
	res := Result{Decision: ImplicitDeny, Policy: -1}
	for i, p := range policies {
		if p == nil {
			continue
		}
		for j := range p.Statements {
			s := &p.Statements[j]
			pm, ok := s.matches(r, action, ctx)
			if !ok {
				continue
			}
			if s.Effect == EffectDeny {
				return Result{Decision: ExplicitDeny, Statement: s, Policy: i, PrincipalMatch: pm}
			}
			if res.Decision != Allow || pm > res.PrincipalMatch {
				res = Result{Decision: Allow, Statement: s, Policy: i, PrincipalMatch: pm}
			}
		}
	}
	return res
}

// matches reports whether the statement applies to the request and, if so,
// how its principal element matched. action is r.Action lower-cased.
func (s *Statement) matches(r Request, action string, ctx evalContext) (PrincipalMatch, bool) {
	// Cheapest tests first: most statements fail on the action.
	if s.matchAction(action) == (s.NotAction != nil) {
		return PrincipalNone, false
	}
	if s.resources != nil && s.matchResource(r.Resource, ctx) == (s.NotResource != nil) {
		return PrincipalNone, false
	}
	pm := PrincipalNone
	if s.Principal != nil {
		pm = s.Principal.match(r.Principal)
		if pm == PrincipalNone {
			return PrincipalNone, false
		}
	}
	for i := range s.Conditions {
		if !s.Conditions[i].eval(ctx) {
			return PrincipalNone, false
		}
	}
	return pm, true
}

func (s *Statement) matchAction(action string) bool {
	for _, g := range s.actions {
		if g.match(action) {
			return true
		}
	}
	return false
}

// matchResource reports whether resource matches any Resource (or
// NotResource) entry. An entry whose policy variable cannot be resolved
// matches nothing.
func (s *Statement) matchResource(resource string, ctx evalContext) bool {
	for i := range s.resources {
		g, ok := s.resources[i].resolveGlob(ctx)
		if ok && matchARN(g, resource) {
			return true
		}
	}
	return false
}

// match returns the strongest way the set names the caller.
func (ps *PrincipalSet) match(p Principal) PrincipalMatch {
	if ps.Any {
		return PrincipalWildcard
	}
	best := PrincipalNone
	for typ, ids := range ps.ByType {
		for _, id := range ids {
			best = max(best, matchPrincipalID(typ, id, p))
		}
	}
	return best
}

func matchPrincipalID(typ, id string, p Principal) PrincipalMatch {
	if typ == "AWS" && id == "*" {
		// {"AWS": "*"} is everyone AWS can authenticate, plus anonymous
		// callers as for "*"; it does not cover web-identity or service
		// principals, which must be named by their own type.
		if p.Type == "" || strings.EqualFold(p.Type, "AWS") {
			return PrincipalWildcard
		}
		return PrincipalNone
	}
	if !strings.EqualFold(p.Type, typ) {
		return PrincipalNone
	}
	if typ == "AWS" {
		if acct, ok := accountOf(id); ok {
			if callerAccount(p) == acct {
				return PrincipalAccount
			}
			return PrincipalNone
		}
	}
	if namesCaller(typ, id, p) {
		return PrincipalDirect
	}
	return PrincipalNone
}

// namesCaller reports whether id is the caller's ARN or an alias. Service
// names are compared case-insensitively; ARNs exactly.
func namesCaller(typ, id string, p Principal) bool {
	eq := func(a, b string) bool { return a == b }
	if typ == "Service" {
		eq = strings.EqualFold
	}
	if p.ARN != "" && eq(id, p.ARN) {
		return true
	}
	for _, a := range p.Aliases {
		if a != "" && eq(id, a) {
			return true
		}
	}
	return false
}

func callerAccount(p Principal) string {
	if acct, ok := accountOf(p.Account); ok {
		return acct
	}
	return p.Account
}
