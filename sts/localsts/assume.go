package localsts

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/credsidecar/credsidecar/iampolicy"
	"github.com/credsidecar/credsidecar/internal/charclass"
	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// STS's parameter rules (reference C.2), as character classes
// (internal/charclass).
var (
	serialNumberChars = charclass.ASCII(true, "+=/:,.@-")
	tokenCodeChars    = charclass.Class(charclass.Digit)
	// policyChars is the session policy's character class:
	// \u0009 \u000A \u000D \u0020-\u00FF.
	policyChars charclass.Class = func(r rune) bool {
		return r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0xFF)
	}
)

// Duration bounds of GetSessionToken (role sessions: package stsrules).
const (
	// MaxSessionTokenDuration and DefaultSessionTokenDuration bound
	// GetSessionToken for IAM users.
	MaxSessionTokenDuration     = 36 * time.Hour
	DefaultSessionTokenDuration = 12 * time.Hour
	maxPolicyChars              = 2048
	maxPolicyARNs               = 10
)

// Tag is a session tag.
type Tag = stsrules.Tag

// AssumeRoleInput is one AssumeRole request, from the Query API or in process.
type AssumeRoleInput struct {
	RoleARN         string
	RoleSessionName string
	// Duration is DurationSeconds; 0 means the default (1h) unless
	// SetDuration marked it as given.
	Duration          time.Duration
	ExternalID        string
	hasExternalID     bool
	durationSet       bool
	SourceIdentity    string
	Policy            string
	PolicyARNs        []string
	Tags              []Tag
	TransitiveTagKeys []string
	// SerialNumber and TokenCode are the MFA parameters.
	SerialNumber, TokenCode string
	// SourceIP and SecureTransport feed aws:SourceIp and aws:SecureTransport.
	SourceIP        netip.Addr
	SecureTransport bool
	// AllowShort lets durations go down to stsrules.MinLocalDuration (in process only).
	AllowShort bool
}

// SetExternalID sets the ExternalId parameter (present even when empty).
func (in *AssumeRoleInput) SetExternalID(v string) { in.ExternalID, in.hasExternalID = v, true }

// SetDuration sets DurationSeconds as given by the client: unlike a zero
// Duration, an explicit 0 is then a validation error, not the default.
func (in *AssumeRoleInput) SetDuration(d time.Duration) { in.Duration, in.durationSet = d, true }

func validationErr(format string, args ...any) *Error {
	return stsErr(400, "ValidationError", format, args...)
}

// constraintErr is STS's message for one failed member constraint.
func constraintErr(member, value, constraint string) *Error {
	if value == "" {
		return validationErr("1 validation error detected: Value at '%s' failed to satisfy constraint: %s", member, constraint)
	}
	return validationErr("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: %s", clipValue(value), member, constraint)
}

// clipValue keeps echoed client values short.
func clipValue(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}

func checkLen(member, v string, min, max int) *Error {
	if n := len(v); n < min || n > max {
		return constraintErr(member, v, fmt.Sprintf("Member must have length between %d and %d", min, max))
	}
	return nil
}

func checkSessionName(member, v string) *Error {
	if err := checkLen(member, v, stsrules.MinSessionNameLen, stsrules.MaxSessionNameLen); err != nil {
		return err
	}
	if !stsrules.ValidSessionName(v) {
		return constraintErr(member, v, "Member must satisfy regular expression pattern: "+stsrules.SessionNamePattern)
	}
	return nil
}

func checkDuration(d time.Duration, set bool, min, max time.Duration) *Error {
	if d == 0 && !set {
		return nil
	}
	if d < min || d > max || d%time.Second != 0 {
		return constraintErr("durationSeconds", fmt.Sprint(int64(d/time.Second)),
			fmt.Sprintf("Member must have value between %d and %d", int(min.Seconds()), int(max.Seconds())))
	}
	return nil
}

// checkSessionPolicy validates the inline session policy's size and
// characters and the managed session policy ARNs.
func checkSessionPolicy(policy string, arns []string) *Error {
	if policy != "" {
		if len(policy) > maxPolicyChars {
			return constraintErr("policy", "", fmt.Sprintf("Member must have length less than or equal to %d", maxPolicyChars))
		}
		if !policyChars.All(policy) {
			return constraintErr("policy", "", `Member must satisfy regular expression pattern: [\u0009\u000A\u000D\u0020-\u00FF]+`)
		}
	}
	if len(arns) > maxPolicyARNs {
		return constraintErr("policyArns", "", fmt.Sprintf("Member must have length less than or equal to %d", maxPolicyARNs))
	}
	for _, a := range arns {
		if err := checkLen("policyArns.member.arn", a, 20, 2048); err != nil {
			return err
		}
	}
	return nil
}

func checkMFA(serial, code string) *Error {
	if serial != "" {
		if err := checkLen("serialNumber", serial, 9, 256); err != nil {
			return err
		}
		if !serialNumberChars.All(serial) {
			return constraintErr("serialNumber", serial, `Member must satisfy regular expression pattern: [\w+=/:,.@-]*`)
		}
	}
	if code != "" && (len(code) != 6 || !tokenCodeChars.All(code)) {
		return constraintErr("tokenCode", code, `Member must satisfy regular expression pattern: [\d]*`)
	}
	if (serial == "") != (code == "") {
		return stsErr(400, "InvalidParameterValue", "SerialNumber and TokenCode must be given together.")
	}
	if serial != "" {
		// The emulated account has no MFA devices: no code can be right, and
		// accepting any would make aws:MultiFactorAuthPresent meaningless.
		e := stsErr(403, "AccessDenied", "MultiFactorAuthentication failed with invalid MFA one time pass code. ")
		e.Reason = "the emulated account has no MFA device " + clipValue(serial)
		return e
	}
	return nil
}

// validate applies STS's parameter validation.
func (in *AssumeRoleInput) validate() *Error {
	if err := checkLen("roleArn", in.RoleARN, 20, 2048); err != nil {
		return err
	}
	if err := checkSessionName("roleSessionName", in.RoleSessionName); err != nil {
		return err
	}
	if in.ExternalID != "" || in.hasExternalID {
		if err := checkLen("externalId", in.ExternalID, 2, 1224); err != nil {
			return err
		}
		if !stsrules.ExternalIDChars.All(in.ExternalID) {
			return constraintErr("externalId", in.ExternalID, `Member must satisfy regular expression pattern: [\w+=,.@:\/-]*`)
		}
	}
	if in.SourceIdentity != "" {
		if err := checkSessionName("sourceIdentity", in.SourceIdentity); err != nil {
			return err
		}
		if stsrules.ReservedSourceIdentity(in.SourceIdentity) {
			return constraintErr("sourceIdentity", in.SourceIdentity, "Member must not start with the reserved prefix aws:")
		}
	}
	min := stsrules.MinDuration
	if in.AllowShort {
		min = stsrules.MinLocalDuration
	}
	if err := checkDuration(in.Duration, in.durationSet, min, stsrules.MaxDuration); err != nil {
		return err
	}
	if err := checkSessionPolicy(in.Policy, in.PolicyARNs); err != nil {
		return err
	}
	if err := validateTags(in.Tags, in.TransitiveTagKeys); err != nil {
		return err
	}
	return checkMFA(in.SerialNumber, in.TokenCode)
}

func validateTags(tags []Tag, transitive []string) *Error {
	if len(tags) > stsrules.MaxTags {
		return constraintErr("tags", "", fmt.Sprintf("Member must have length less than or equal to %d", stsrules.MaxTags))
	}
	seen := map[string]bool{}
	for _, t := range tags {
		if !stsrules.ValidTagKey(t.Key) {
			return constraintErr("tags.member.key", t.Key, "Member must satisfy regular expression pattern: "+stsrules.TagKeyPattern)
		}
		if !stsrules.ValidTagValue(t.Value) {
			return constraintErr("tags.member.value", "", "Member must satisfy regular expression pattern: "+stsrules.TagValuePattern)
		}
		k := strings.ToLower(t.Key)
		if seen[k] {
			return stsErr(400, "InvalidParameterValue", "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		seen[k] = true
	}
	if len(transitive) > stsrules.MaxTags {
		return constraintErr("transitiveTagKeys", "", fmt.Sprintf("Member must have length less than or equal to %d", stsrules.MaxTags))
	}
	for _, k := range transitive {
		if !stsrules.ValidTagKey(k) {
			return constraintErr("transitiveTagKeys.member", k, "Member must satisfy regular expression pattern: "+stsrules.TagKeyPattern)
		}
		if !seen[strings.ToLower(k)] {
			return stsErr(400, "InvalidParameterValue", "The specified transitive tag key must be included in the requested tags.")
		}
	}
	return nil
}

// parseSessionPolicies parses the inline session policy and resolves the
// managed ones: the two together bound the session.
func parseSessionPolicies(acct *Account, policy string, arns []string) ([]*iampolicy.Policy, *Error) {
	var out []*iampolicy.Policy
	if policy != "" {
		p, err := iampolicy.ParseKind([]byte(policy), iampolicy.KindIdentity)
		if err != nil {
			return nil, stsErr(400, "MalformedPolicyDocument", "%s", strings.TrimPrefix(err.Error(), "MalformedPolicyDocument: "))
		}
		out = append(out, p)
	}
	for _, arn := range arns {
		p, ok := acct.ManagedPolicy(arn)
		if !ok {
			return nil, stsErr(400, "InvalidParameterValue", "Policy %s does not exist or is not attachable.", clipValue(arn))
		}
		out = append(out, p)
	}
	return out, nil
}

// AssumeRole validates the request, authorizes caller as IAM does, and
// mints the session. It is the one decision both the Query API and the
// in-process Source use.
func (i *Issuer) AssumeRole(_ context.Context, caller *Principal, in AssumeRoleInput) (*Issued, error) {
	d := i.decide(caller, in, false)
	if d.Err != nil {
		return nil, d.Err
	}
	return i.mint(d.claims)
}

// ExplainAssumeRole runs AssumeRole's validation and authorization for
// caller and in — the same code, with every policy statement traced — and
// mints nothing. Credentials would be issued exactly when the result's Err
// is nil.
func (i *Issuer) ExplainAssumeRole(caller *Principal, in AssumeRoleInput) *AssumeDecision {
	return i.decide(caller, in, true)
}

// AssumeDecision is AssumeRole's verdict on one request and what decided it.
type AssumeDecision struct {
	// Err is what the caller gets (AWS's message), nil when allowed.
	Err *Error
	// Action is the action that was refused; "" when allowed or refused
	// before authorization (validation, an unknown role).
	Action string
	// Actions are the actions authorized, in order: sts:AssumeRole, then
	// sts:TagSession and sts:SetSourceIdentity when the request needs them.
	Actions []string
	// Steps are the policy sets evaluated for the refused action (for the
	// last action when allowed), trust policy first.
	Steps []PolicyStep
	// Reason says why it was refused, in one line fit for a log: policy
	// set, statement and condition names, never a value from the request.
	Reason string

	claims *SessionClaims
}

// PolicyStep is one policy set's verdict in an AssumeRole decision.
type PolicyStep struct {
	// Set is "trust policy", "identity policies" or "session policies".
	Set string
	// Result is the set's evaluation.
	Result iampolicy.Result
	// Traces are the set's statements, each with why it did or did not
	// apply (only when explaining).
	Traces []iampolicy.Trace
}

// Claims returns the claims of the session the request would get (nil
// when refused): what a chained request's caller would present.
func (d *AssumeDecision) Claims() *SessionClaims { return d.claims }

// decide is AssumeRole without the minting. trace records every
// statement's trace in the steps.
func (i *Issuer) decide(caller *Principal, in AssumeRoleInput, trace bool) *AssumeDecision {
	d := &AssumeDecision{}
	refuse := func(e *Error, reason string) *AssumeDecision {
		if e.Reason == "" {
			e.Reason = reason
		}
		d.Err, d.Reason = e, e.Reason
		return d
	}
	if err := in.validate(); err != nil {
		return refuse(err, "invalid request: "+err.Message)
	}
	acct := i.Account()
	now := i.clk.Now()
	denied := func(action string) *Error {
		return stsErr(403, "AccessDenied", "User: %s is not authorized to perform: %s on resource: %s", caller.ARN, action, in.RoleARN)
	}
	role, ok := acct.Role(in.RoleARN)
	if !ok {
		d.Action = "sts:AssumeRole"
		return refuse(denied(d.Action), "the role is not in the emulated account")
	}
	chained := caller.Session != nil && caller.Session.Kind == "role"
	dur := in.Duration
	if dur == 0 {
		dur = stsrules.DefaultDuration
	}
	if chained && dur > stsrules.ChainMaxDuration {
		e := validationErr("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
		return refuse(e, "invalid request: "+e.Message)
	}
	if _, err := parseSessionPolicies(acct, in.Policy, in.PolicyARNs); err != nil {
		return refuse(err, "invalid session policy: "+err.Message)
	}

	// Tags: inherited transitive tags carry over and cannot be overridden.
	tags := map[string]string{}
	var transitive []string
	if chained {
		for _, k := range caller.Session.Transitive {
			tags[k] = caller.Session.Tags[k]
			transitive = append(transitive, k)
		}
	}
	for _, t := range in.Tags {
		for _, k := range transitive {
			if strings.EqualFold(k, t.Key) {
				e := stsErr(400, "InvalidParameterValue", "One or more session tags are in conflict with transitive tags of the calling session.")
				return refuse(e, "session tag "+t.Key+" conflicts with a transitive tag of the calling session")
			}
		}
		tags[t.Key] = t.Value
	}
	transitive = append(transitive, in.TransitiveTagKeys...)
	sourceIdentity := in.SourceIdentity
	if caller.Session != nil && caller.Session.SourceIdentity != "" {
		if sourceIdentity != "" && sourceIdentity != caller.Session.SourceIdentity {
			// IAM User Guide, "Monitor and control actions taken with
			// assumed roles": once set, a source identity cannot be changed
			// for the rest of the role chain.
			d.Action = "sts:SetSourceIdentity"
			return refuse(denied(d.Action), "the calling session's source identity cannot be changed in a role chain")
		}
		sourceIdentity = caller.Session.SourceIdentity
	}

	req := i.requestContext(acct, caller, in, now)
	if sourceIdentity != "" {
		req.Context["sts:SourceIdentity"] = []string{sourceIdentity}
	}
	d.Actions = []string{"sts:AssumeRole"}
	if len(in.Tags) > 0 {
		d.Actions = append(d.Actions, "sts:TagSession")
	}
	// A source identity, set now or inherited in a chain, must be allowed
	// by the next role's trust policy every time it is passed on.
	if sourceIdentity != "" {
		d.Actions = append(d.Actions, "sts:SetSourceIdentity")
	}
	for _, action := range d.Actions {
		req.Action = action
		steps, reason := i.authorize(acct, caller, role, req, trace)
		d.Steps = steps
		if reason != "" {
			d.Action = action
			return refuse(denied(action), reason)
		}
	}
	d.claims = &SessionClaims{
		Kind: "role", Account: acct.ID, RoleARN: role.ARN, SessionName: in.RoleSessionName,
		Issued: now.Unix(), Expires: now.Add(dur).Unix(), SessionPolicy: in.Policy, PolicyARNs: in.PolicyARNs,
		SourceIdentity: sourceIdentity, Chained: chained, Transitive: transitive,
	}
	if caller.Session != nil {
		d.claims.MFA = caller.Session.MFA
	}
	if len(tags) > 0 {
		d.claims.Tags = tags
	}
	return d
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// baseContext holds the keys every request has (D.5).
func baseContext(now time.Time, ip netip.Addr, secure bool) map[string][]string {
	ctx := map[string][]string{
		"aws:CurrentTime":     {now.UTC().Format(time.RFC3339)},
		"aws:EpochTime":       {fmt.Sprint(now.Unix())},
		"aws:SecureTransport": {fmt.Sprint(secure)},
	}
	if ip.IsValid() {
		ctx["aws:SourceIp"] = []string{ip.Unmap().String()}
	}
	return ctx
}

// principalContext adds the keys that describe the caller.
func principalContext(ctx map[string][]string, acct *Account, caller *Principal) iampolicy.Principal {
	ctx["aws:PrincipalAccount"] = []string{caller.Account}
	ctx["aws:PrincipalType"] = []string{caller.Type}
	ctx["aws:userid"] = []string{caller.UserID}
	p := iampolicy.Principal{Type: "AWS", ARN: caller.ARN, Account: caller.Account}
	principalARN := caller.ARN
	var ptags map[string]string
	if caller.User != nil {
		ctx["aws:username"] = []string{caller.User.Name}
		ptags = caller.User.Tags
	}
	if s := caller.Session; s != nil && s.Kind == "role" {
		principalARN = s.RoleARN
		p.Aliases = []string{s.RoleARN}
		if r, ok := acct.Role(s.RoleARN); ok {
			ptags = r.Tags
		}
	}
	ctx["aws:PrincipalArn"] = []string{principalARN}
	for k, v := range ptags {
		ctx["aws:PrincipalTag/"+k] = []string{v}
	}
	if s := caller.Session; s != nil {
		for k, v := range s.Tags {
			ctx["aws:PrincipalTag/"+k] = []string{v}
		}
		if s.SourceIdentity != "" {
			ctx["aws:SourceIdentity"] = []string{s.SourceIdentity}
		}
		if s.MFA {
			ctx["aws:MultiFactorAuthPresent"] = []string{"true"}
		}
	}
	return p
}

// requestContext builds the condition keys of an AssumeRole request (D.5).
func (i *Issuer) requestContext(acct *Account, caller *Principal, in AssumeRoleInput, now time.Time) iampolicy.Request {
	ctx := baseContext(now, in.SourceIP, in.SecureTransport)
	ctx["sts:RoleSessionName"] = []string{in.RoleSessionName}
	p := principalContext(ctx, acct, caller)
	if in.ExternalID != "" || in.hasExternalID {
		ctx["sts:ExternalId"] = []string{in.ExternalID}
	}
	if in.SourceIdentity != "" {
		ctx["sts:SourceIdentity"] = []string{in.SourceIdentity}
	}
	if in.Duration != 0 {
		ctx["sts:DurationSeconds"] = []string{fmt.Sprint(int(in.Duration.Seconds()))}
	}
	if len(in.Tags) > 0 {
		var keys []string
		for _, t := range in.Tags {
			keys = append(keys, t.Key)
			ctx["aws:RequestTag/"+t.Key] = []string{t.Value}
		}
		sort.Strings(keys)
		ctx["sts:TagKeys"] = keys
		ctx["aws:TagKeys"] = keys
	}
	if len(in.TransitiveTagKeys) > 0 {
		ctx["sts:TransitiveTagKeys"] = in.TransitiveTagKeys
	}
	return iampolicy.Request{Principal: p, Resource: in.RoleARN, Context: ctx}
}

// identityPolicies are the caller's permissions: a user's policies, or for
// a role session its role's policies and, separately, the session policies
// that bound them (the session may do what both allow).
func (i *Issuer) identityPolicies(acct *Account, caller *Principal) (perms []*iampolicy.Policy, session []*iampolicy.Policy) {
	if caller.User != nil {
		return caller.User.Policies, nil
	}
	s := caller.Session
	if s == nil {
		return nil, nil
	}
	if r, ok := acct.Role(s.RoleARN); ok {
		perms = r.Permissions
	}
	if s.SessionPolicy != "" {
		p, err := iampolicy.ParseKind([]byte(s.SessionPolicy), iampolicy.KindIdentity)
		if err != nil {
			// Validated when the session was issued; an unparsable one
			// (never expected) must not widen the session: deny all.
			p = denyAll
		}
		session = append(session, p)
	}
	for _, arn := range s.PolicyARNs {
		p, ok := acct.ManagedPolicy(arn)
		if !ok {
			// A managed policy removed since: nothing it allowed remains.
			p = denyAll
		}
		session = append(session, p)
	}
	return perms, session
}

// denyAll is a session policy that allows nothing.
var denyAll = mustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`)

func mustParse(doc string) *iampolicy.Policy {
	p, err := iampolicy.ParseKind([]byte(doc), iampolicy.KindIdentity)
	if err != nil {
		panic(err)
	}
	return p
}

// authorize is IAM's AssumeRole decision (reference D.2):
//   - an explicit deny in the trust, identity or session policies wins;
//   - the trust policy must allow;
//   - a trust policy naming the caller directly suffices within the account,
//     one naming only the account (or *) also needs the caller's identity
//     policies to allow the action on the role;
//   - a role session's session policies filter both grants, except a trust
//     grant to the session's own ARN (AWS does not limit a resource policy
//     that names the session).
//
// It returns the policy sets it evaluated and, when the action is refused,
// why ("" when allowed). trace records every statement's trace.
func (i *Issuer) authorize(acct *Account, caller *Principal, role *Role, req iampolicy.Request, trace bool) ([]PolicyStep, string) {
	var steps []PolicyStep
	eval := func(set string, ps []*iampolicy.Policy, r iampolicy.Request) iampolicy.Result {
		st := PolicyStep{Set: set}
		if trace {
			st.Result, st.Traces = iampolicy.Explain(ps, r)
		} else {
			st.Result = iampolicy.Evaluate(ps, r)
		}
		steps = append(steps, st)
		return st.Result
	}
	// why builds the reason from the set's traces, computed now if they
	// were not recorded: refusals are rare and cached by the agent.
	why := func(set string, ps []*iampolicy.Policy, r iampolicy.Request, res iampolicy.Result) string {
		_, traces := iampolicy.Explain(ps, r)
		return denialReason(set, r.Action, res, traces)
	}
	trust := eval("trust policy", []*iampolicy.Policy{role.Trust}, req)
	if trust.Decision != iampolicy.Allow {
		return steps, why("trust policy", []*iampolicy.Policy{role.Trust}, req, trust)
	}
	perms, session := i.identityPolicies(acct, caller)
	idReq := req
	idReq.Principal = iampolicy.Principal{}
	id := eval("identity policies", perms, idReq)
	if id.Decision == iampolicy.ExplicitDeny {
		return steps, why("identity policies", perms, idReq, id)
	}
	sessionAllows := true
	var sd iampolicy.Result
	if len(session) > 0 {
		sd = eval("session policies", session, idReq)
		if sd.Decision == iampolicy.ExplicitDeny {
			return steps, why("session policies", session, idReq, sd)
		}
		sessionAllows = sd.Decision == iampolicy.Allow
	}
	sameAccount := caller.Account == acct.ID
	if trust.PrincipalMatch == iampolicy.PrincipalDirect && sameAccount {
		if sessionAllows {
			return steps, ""
		}
		// Only a grant to the session ARN itself escapes the session policy.
		bySession := req
		bySession.Principal.Aliases = nil
		if t := role.Trust.Evaluate(bySession); t.Decision == iampolicy.Allow && t.PrincipalMatch == iampolicy.PrincipalDirect {
			return steps, ""
		}
		return steps, why("session policies", session, idReq, sd)
	}
	if id.Decision != iampolicy.Allow {
		return steps, why("identity policies", perms, idReq, id) + " (the trust policy names the caller only by account or wildcard, so the caller's own policies must allow it too)"
	}
	if !sessionAllows {
		return steps, why("session policies", session, idReq, sd)
	}
	return steps, ""
}

// denialReason says in one line why a policy set did not allow action:
// the explicit deny, or each statement and what it lacked. It names
// statements, operators and condition keys, never a value, so it is fit
// for logs.
func denialReason(set, action string, res iampolicy.Result, traces []iampolicy.Trace) string {
	if res.Decision == iampolicy.ExplicitDeny && res.Statement != nil {
		return fmt.Sprintf("%s: explicit deny of %s by %s", set, action, res.Statement.Name())
	}
	var parts []string
	for _, tr := range traces {
		if tr.Statement.Effect != iampolicy.EffectAllow || tr.Matched {
			continue
		}
		why := tr.Why()
		if tr.Failed == iampolicy.ElementCondition {
			why = "condition " + tr.Condition.Operator + " on " + tr.Condition.Key + " is false"
		}
		parts = append(parts, tr.Statement.Name()+": "+why)
	}
	out := fmt.Sprintf("%s: no statement allows %s", set, action)
	if len(parts) == 0 {
		return out
	}
	const most = 4
	if len(parts) > most {
		parts = append(parts[:most], fmt.Sprintf("%d more", len(parts)-most))
	}
	return out + " (" + strings.Join(parts, "; ") + ")"
}
