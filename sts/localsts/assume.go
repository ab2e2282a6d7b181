package localsts

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/credsidecar/credsidecar/iampolicy"
)

// STS's parameter rules (reference C.2).
var (
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]*$`)
	externalIDRE  = regexp.MustCompile(`^[\w+=,.@:/-]*$`)
	tagKeyRE      = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]+$`)
	tagValueRE    = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@*]*$`)
)

// Duration bounds.
const (
	MinDuration      = 15 * time.Minute
	MaxDuration      = 12 * time.Hour
	DefaultDuration  = time.Hour
	ChainMaxDuration = time.Hour
	// MinLocalDuration is the floor of the in-process source: local mode
	// lets users watch their apps refresh.
	MinLocalDuration = time.Minute
	maxPolicyChars   = 2048
)

// Tag is a session tag.
type Tag struct{ Key, Value string }

// AssumeRoleInput is one AssumeRole request, from the Query API or in process.
type AssumeRoleInput struct {
	RoleARN           string
	RoleSessionName   string
	Duration          time.Duration // 0 = default
	ExternalID        string
	hasExternalID     bool
	SourceIdentity    string
	Policy            string
	PolicyARNs        []string
	Tags              []Tag
	TransitiveTagKeys []string
	// SourceIP and SecureTransport feed aws:SourceIp and aws:SecureTransport.
	SourceIP        netip.Addr
	SecureTransport bool
	// AllowShort lets durations go down to MinLocalDuration (in process only).
	AllowShort bool
}

// SetExternalID sets the ExternalId parameter (present even when empty).
func (in *AssumeRoleInput) SetExternalID(v string) { in.ExternalID, in.hasExternalID = v, true }

func validationErr(format string, args ...any) *Error {
	return stsErr(400, "ValidationError", format, args...)
}

// validate applies STS's parameter validation.
func (in *AssumeRoleInput) validate() *Error {
	if l := len(in.RoleARN); l < 20 || l > 2048 {
		return validationErr("1 validation error detected: Value '%s' at 'roleArn' failed to satisfy constraint: Member must have length between 20 and 2048", in.RoleARN)
	}
	if l := len(in.RoleSessionName); l < 2 || l > 64 {
		return validationErr("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64", in.RoleSessionName)
	}
	if !sessionNameRE.MatchString(in.RoleSessionName) {
		return validationErr("1 validation error detected: Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*", in.RoleSessionName)
	}
	if in.ExternalID != "" || in.hasExternalID {
		if l := len(in.ExternalID); l < 2 || l > 1224 || !externalIDRE.MatchString(in.ExternalID) {
			return validationErr("1 validation error detected: Value at 'externalId' failed to satisfy constraint: Member must have length between 2 and 1224 and satisfy regular expression pattern: [\\w+=,.@:\\/-]*")
		}
	}
	if in.SourceIdentity != "" {
		if l := len(in.SourceIdentity); l < 2 || l > 64 || !sessionNameRE.MatchString(in.SourceIdentity) || strings.HasPrefix(strings.ToLower(in.SourceIdentity), "aws:") {
			return validationErr("1 validation error detected: Value '%s' at 'sourceIdentity' failed to satisfy constraint: Member must have length between 2 and 64 and satisfy regular expression pattern: [\\w+=,.@-]*", in.SourceIdentity)
		}
	}
	min := MinDuration
	if in.AllowShort {
		min = MinLocalDuration
	}
	if in.Duration != 0 && (in.Duration < min || in.Duration > MaxDuration) {
		return validationErr("1 validation error detected: Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value between %d and %d", int(in.Duration.Seconds()), int(min.Seconds()), int(MaxDuration.Seconds()))
	}
	if len(in.Policy) > maxPolicyChars {
		return stsErr(400, "PackedPolicyTooLarge", "Session policy is larger than %d characters", maxPolicyChars)
	}
	if len(in.PolicyARNs) > 10 {
		return validationErr("1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to 10")
	}
	if len(in.Tags) > 50 {
		return validationErr("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	seen := map[string]bool{}
	for _, t := range in.Tags {
		if len(t.Key) < 1 || len(t.Key) > 128 || !tagKeyRE.MatchString(t.Key) {
			return validationErr("1 validation error detected: Value '%s' at 'tags.key' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+", t.Key)
		}
		if len(t.Value) > 256 || !tagValueRE.MatchString(t.Value) {
			return validationErr("1 validation error detected: Value at 'tags.value' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*")
		}
		k := strings.ToLower(t.Key)
		if seen[k] {
			return stsErr(400, "InvalidParameterValue", "Duplicate tag keys found. Please note that Tag keys are case insensitive.")
		}
		seen[k] = true
	}
	if len(in.TransitiveTagKeys) > 50 {
		return validationErr("1 validation error detected: Value at 'transitiveTagKeys' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for _, k := range in.TransitiveTagKeys {
		if !seen[strings.ToLower(k)] {
			return stsErr(400, "InvalidParameterValue", "The specified transitive tag key must be included in the requested tags.")
		}
	}
	return nil
}

// AssumeRole validates the request, authorizes caller as IAM does, and
// mints the session. It is the one decision both the Query API and the
// in-process Source use.
func (i *Issuer) AssumeRole(_ context.Context, caller *Principal, in AssumeRoleInput) (*Issued, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	acct := i.Account()
	now := i.clk.Now()
	denied := stsErr(403, "AccessDenied", "User: %s is not authorized to perform: sts:AssumeRole on resource: %s", caller.ARN, in.RoleARN)
	role, ok := acct.Role(in.RoleARN)
	if !ok {
		return nil, denied
	}
	chained := caller.Session != nil && caller.Session.Kind == "role"
	d := in.Duration
	if d == 0 {
		d = DefaultDuration
	}
	if chained && d > ChainMaxDuration {
		return nil, validationErr("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
	}
	var sessionPolicies []*iampolicy.Policy
	if in.Policy != "" {
		p, err := iampolicy.ParseKind([]byte(in.Policy), iampolicy.KindIdentity)
		if err != nil {
			return nil, stsErr(400, "MalformedPolicyDocument", "%v", err)
		}
		sessionPolicies = append(sessionPolicies, p)
	}
	for _, arn := range in.PolicyARNs {
		if _, ok := acct.ManagedPolicy(arn); !ok {
			return nil, stsErr(400, "InvalidParameterValue", "Policy %s does not exist or is not attachable.", arn)
		}
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
		for k := range tags {
			if strings.EqualFold(k, t.Key) && contains(transitive, k) {
				return nil, stsErr(400, "InvalidParameterValue", "One or more session tags are in conflict with transitive tags of the calling session.")
			}
		}
		tags[t.Key] = t.Value
	}
	transitive = append(transitive, in.TransitiveTagKeys...)
	sourceIdentity := in.SourceIdentity
	if caller.Session != nil && caller.Session.SourceIdentity != "" {
		if sourceIdentity != "" && sourceIdentity != caller.Session.SourceIdentity {
			return nil, stsErr(403, "AccessDenied", "SourceIdentity cannot be changed in a role chain")
		}
		sourceIdentity = caller.Session.SourceIdentity
	}

	req := i.requestContext(acct, caller, in, now)
	actions := []string{"sts:AssumeRole"}
	if len(in.Tags) > 0 {
		actions = append(actions, "sts:TagSession")
	}
	if in.SourceIdentity != "" {
		actions = append(actions, "sts:SetSourceIdentity")
	}
	for _, action := range actions {
		req.Action = action
		if err := i.authorize(acct, caller, role, req); err != nil {
			return nil, stsErr(403, "AccessDenied", "User: %s is not authorized to perform: %s on resource: %s", caller.ARN, action, in.RoleARN)
		}
	}
	claims := &SessionClaims{
		Kind: "role", Account: acct.ID, RoleARN: role.ARN, SessionName: in.RoleSessionName,
		Issued: now.Unix(), Expires: now.Add(d).Unix(), SessionPolicy: in.Policy, PolicyARNs: in.PolicyARNs,
		SourceIdentity: sourceIdentity, Chained: chained, Transitive: transitive,
	}
	if len(tags) > 0 {
		claims.Tags = tags
	}
	return i.mint(claims)
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// requestContext builds the condition keys of an AssumeRole request (D.5).
func (i *Issuer) requestContext(acct *Account, caller *Principal, in AssumeRoleInput, now time.Time) iampolicy.Request {
	ctx := map[string][]string{
		"aws:CurrentTime":      {now.UTC().Format(time.RFC3339)},
		"aws:EpochTime":        {fmt.Sprint(now.Unix())},
		"aws:PrincipalAccount": {caller.Account},
		"aws:PrincipalType":    {caller.Type},
		"aws:userid":           {caller.UserID},
		"aws:SecureTransport":  {fmt.Sprint(in.SecureTransport)},
		"sts:RoleSessionName":  {in.RoleSessionName},
	}
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
	if in.SourceIP.IsValid() {
		ctx["aws:SourceIp"] = []string{in.SourceIP.String()}
	}
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
// a role session its role's policies intersected with its session policies.
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
		if p, err := iampolicy.ParseKind([]byte(s.SessionPolicy), iampolicy.KindIdentity); err == nil {
			session = append(session, p)
		}
	}
	for _, arn := range s.PolicyARNs {
		if p, ok := acct.ManagedPolicy(arn); ok {
			session = append(session, p)
		}
	}
	return perms, session
}

// authorize is IAM's AssumeRole decision (reference D.2): an explicit deny
// anywhere wins; the trust policy must allow; naming the caller directly
// suffices within the account, naming only the account (or *) also needs
// the caller's identity policies to allow the action on the role.
func (i *Issuer) authorize(acct *Account, caller *Principal, role *Role, req iampolicy.Request) error {
	trust := role.Trust.Evaluate(req)
	if trust.Decision != iampolicy.Allow {
		return fmt.Errorf("trust policy: %s", trust.Decision)
	}
	perms, session := i.identityPolicies(acct, caller)
	idReq := req
	idReq.Principal = iampolicy.Principal{}
	id := iampolicy.Evaluate(perms, idReq)
	if id.Decision == iampolicy.ExplicitDeny {
		return fmt.Errorf("identity policy: explicit deny")
	}
	if len(session) > 0 {
		sd := iampolicy.Evaluate(session, idReq)
		if sd.Decision == iampolicy.ExplicitDeny {
			return fmt.Errorf("session policy: explicit deny")
		}
		if trust.PrincipalMatch != iampolicy.PrincipalDirect && sd.Decision != iampolicy.Allow {
			return fmt.Errorf("session policy does not allow")
		}
	}
	sameAccount := caller.Account == acct.ID
	if trust.PrincipalMatch == iampolicy.PrincipalDirect && sameAccount {
		return nil
	}
	if id.Decision != iampolicy.Allow {
		return fmt.Errorf("identity policy does not allow")
	}
	return nil
}
