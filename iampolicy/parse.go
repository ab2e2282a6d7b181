// Package iampolicy parses and evaluates the AWS IAM policy language — trust,
// identity (permission) and session policies — so that the STS emulator can
// authorise AssumeRole* calls offline with the same answers AWS would give.
//
// Parse a document once with Parse or ParseKind and evaluate the resulting
// *Policy as often as needed; a parsed Policy is immutable and safe for
// concurrent use.
package iampolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// MaxDocumentSize is the largest policy document Parse accepts, in bytes.
// AWS's own limits are far smaller (a role trust policy is at most 2048
// characters by default); the cap only keeps a hostile document from costing
// unbounded memory or time.
const MaxDocumentSize = 1 << 20

// maxDepth bounds JSON nesting. A valid policy nests at most 7 levels deep
// (document → Statement list → statement → Condition → operator → key →
// value list), so anything deeper is rejected before it is decoded.
const maxDepth = 16

// Policy language versions. Policy variables (${...}) are only substituted in
// Version2012 documents; in older or unversioned documents they are literal
// text, as in AWS.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Kind says which grammar a policy document must follow.
type Kind int

const (
	// KindIdentity is an identity (permission) or session policy: Principal
	// is forbidden and Resource or NotResource is required.
	KindIdentity Kind = iota
	// KindTrust is a role trust policy: Principal is required, Resource and
	// NotResource are forbidden (the role itself is the implicit resource)
	// and every action must be one of STS's role-assumption actions, as
	// IAM's CreateRole and UpdateAssumeRolePolicy require.
	KindTrust
)

// kindAny is what Parse uses: the common grammar without the kind-specific
// element requirements.
const kindAny Kind = -1

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case KindIdentity:
		return "identity"
	case KindTrust:
		return "trust"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Effect is a statement's Effect element.
type Effect string

// The two effects a statement may have; AWS spells them exactly so.
const (
	EffectAllow Effect = "Allow"
	EffectDeny  Effect = "Deny"
)

// MalformedError reports a policy document that does not follow the policy
// grammar. Path locates the offending element in the document, e.g.
// "Statement[1].Condition.StringEquals"; it is empty for document-level
// problems such as invalid JSON.
type MalformedError struct {
	Path string
	Msg  string
	// Err is the underlying cause, if any (e.g. a *json.SyntaxError).
	Err error
}

// Error returns "MalformedPolicyDocument: <path>: <msg>", using the STS error
// code so callers can pass it through to clients unchanged.
func (e *MalformedError) Error() string {
	if e.Path == "" {
		return "MalformedPolicyDocument: " + e.Msg
	}
	return "MalformedPolicyDocument: " + e.Path + ": " + e.Msg
}

// Unwrap returns the underlying cause.
func (e *MalformedError) Unwrap() error { return e.Err }

func malformed(path, format string, args ...any) *MalformedError {
	return &MalformedError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Policy is a parsed policy document.
type Policy struct {
	// Version is the Version element, "" when the document has none.
	Version string
	// ID is the Id element.
	ID string
	// Statements are in document order; Statement.Index is the position.
	Statements []Statement
}

// Statement is one parsed statement. Exactly one of Action and NotAction is
// non-nil; at most one of Resource and NotResource. Statements are only
// usable when produced by Parse or ParseKind, which also compile the
// matchers held in unexported fields.
type Statement struct {
	Sid    string
	Effect Effect
	// Index is the statement's position in the Statement list (0 when the
	// document has a single statement object).
	Index int

	// Principal is nil in identity and session policies. There is no
	// NotPrincipal: no policy credsidecar evaluates may use it (see
	// parsePrincipals).
	Principal   *PrincipalSet
	Action      []string
	NotAction   []string
	Resource    []string
	NotResource []string
	// Conditions are sorted by operator, then key, so evaluation order and
	// error reporting do not depend on JSON map order.
	Conditions []Condition

	actions   []glob     // compiled Action or NotAction, lower-cased
	resources []template // compiled Resource or NotResource
}

// PrincipalSet is the value of a Principal element.
type PrincipalSet struct {
	// Any is true for "Principal": "*".
	Any bool
	// ByType maps "AWS", "Service", "Federated" or "CanonicalUser" to the
	// identifiers listed under it, as written.
	ByType map[string][]string
}

// Condition is one operator/key pair of a Condition block.
type Condition struct {
	// Operator is the operator as written, e.g. "ForAnyValue:StringLike".
	Operator string
	// Key is the condition key as written; it is matched case-insensitively.
	Key string
	// Values are the policy values as text; JSON numbers and booleans keep
	// their literal text.
	Values []string

	spec     opSpec
	set      setMode
	ifExists bool
	key      string // lower-cased Key
	vals     []condValue
}

// Parse parses a JSON policy document of any kind, checking the grammar that
// all kinds share but not whether Principal or Resource must be present. The
// error, if any, is a *MalformedError.
func Parse(doc []byte) (*Policy, error) {
	return parse(doc, kindAny)
}

// ParseKind parses a JSON policy document and also enforces the grammar of
// kind k: identity and session policies must not name a principal and must
// name a resource; trust policies must name a principal. Grammar errors are
// *MalformedError.
func ParseKind(doc []byte, k Kind) (*Policy, error) {
	if k != KindIdentity && k != KindTrust {
		return nil, fmt.Errorf("parse policy: unknown policy kind %d", int(k))
	}
	return parse(doc, k)
}

func parse(doc []byte, k Kind) (*Policy, error) {
	if len(doc) > MaxDocumentSize {
		return nil, malformed("", "document is %d bytes, more than the %d allowed", len(doc), MaxDocumentSize)
	}
	if err := checkDepth(doc); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	// Numbers stay as their text: condition values such as "3600" must
	// compare as written, and float64 would lose precision.
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, &MalformedError{Msg: "invalid JSON: " + err.Error(), Err: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, malformed("", "invalid JSON: unexpected data after the policy document")
	}
	top, ok := raw.(map[string]any)
	if !ok {
		return nil, malformed("", "policy document must be a JSON object")
	}
	return parsePolicy(top, k)
}

// checkDepth rejects documents nested deeper than maxDepth in one linear
// pass, before encoding/json recurses into them.
func checkDepth(doc []byte) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range doc {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return malformed("", "document is nested more than %d levels deep", maxDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

func parsePolicy(top map[string]any, k Kind) (*Policy, error) {
	p := &Policy{}
	for _, name := range sortedKeys(top) {
		switch name {
		case "Version", "Id", "Statement":
		default:
			return nil, malformed(name, "unknown policy element")
		}
	}
	if v, ok := top["Version"]; ok {
		s, ok := v.(string)
		if !ok || (s != Version2012 && s != Version2008) {
			return nil, malformed("Version", "must be %q or %q", Version2012, Version2008)
		}
		p.Version = s
	}
	if v, ok := top["Id"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, malformed("Id", "must be a string")
		}
		p.ID = s
	}
	rawStmts, ok := top["Statement"]
	if !ok {
		return nil, malformed("Statement", "required element is missing")
	}
	vars := p.Version == Version2012
	switch v := rawStmts.(type) {
	case map[string]any:
		s, err := parseStatement(v, "Statement", 0, k, vars)
		if err != nil {
			return nil, err
		}
		p.Statements = []Statement{s}
	case []any:
		if len(v) == 0 {
			return nil, malformed("Statement", "must not be empty")
		}
		p.Statements = make([]Statement, 0, len(v))
		for i, e := range v {
			path := fmt.Sprintf("Statement[%d]", i)
			m, ok := e.(map[string]any)
			if !ok {
				return nil, malformed(path, "statement must be a JSON object")
			}
			s, err := parseStatement(m, path, i, k, vars)
			if err != nil {
				return nil, err
			}
			p.Statements = append(p.Statements, s)
		}
	default:
		return nil, malformed("Statement", "must be an object or a list of objects")
	}
	// Sids must be unique within a policy so that a decision can be traced
	// back to one statement.
	seen := make(map[string]int)
	for i := range p.Statements {
		sid := p.Statements[i].Sid
		if sid == "" {
			continue
		}
		if j, dup := seen[sid]; dup {
			return nil, malformed(fmt.Sprintf("Statement[%d].Sid", i), "duplicate Sid %q (also Statement[%d])", clip(sid), j)
		}
		seen[sid] = i
	}
	return p, nil
}

func parseStatement(m map[string]any, path string, index int, k Kind, vars bool) (Statement, error) {
	s := Statement{Index: index}
	for _, name := range sortedKeys(m) {
		switch name {
		case "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
			"Resource", "NotResource", "Condition":
		default:
			return s, malformed(path+"."+name, "unknown statement element")
		}
	}
	if v, ok := m["Sid"]; ok {
		sid, ok := v.(string)
		if !ok {
			return s, malformed(path+".Sid", "must be a string")
		}
		s.Sid = sid
	}

	switch v, ok := m["Effect"]; {
	case !ok:
		return s, malformed(path+".Effect", "required element is missing")
	case v == string(EffectAllow):
		s.Effect = EffectAllow
	case v == string(EffectDeny):
		s.Effect = EffectDeny
	default:
		return s, malformed(path+".Effect", "must be %q or %q, got %s", EffectAllow, EffectDeny, describe(v))
	}

	if err := s.parsePrincipals(m, path, k); err != nil {
		return s, err
	}
	if err := s.parseActions(m, path, k); err != nil {
		return s, err
	}
	if err := s.parseResources(m, path, k, vars); err != nil {
		return s, err
	}
	if v, ok := m["Condition"]; ok {
		conds, err := parseConditions(v, path+".Condition", vars)
		if err != nil {
			return s, err
		}
		s.Conditions = conds
	}
	return s, nil
}

// notPrincipalMsg explains why NotPrincipal is refused and what to write
// instead. IAM User Guide, "AWS JSON policy elements: NotPrincipal"
// (reference_policies_elements_notprincipal.html): "You cannot use the
// NotPrincipal element in an IAM identity-based policy nor in an IAM role
// trust policy", and "NotPrincipal must be used with "Effect":"Deny". Using
// it with "Effect":"Allow" is not supported"; the page recommends a Deny
// with a condition on aws:PrincipalArn instead. Every policy credsidecar
// evaluates is a trust, identity or session policy, so it is refused in all.
const notPrincipalMsg = `NotPrincipal is not allowed in trust, identity or session policies; ` +
	`to exempt principals from a Deny, use "Principal": "*" (or none, in an identity policy) with a condition such as ` +
	`{"ArnNotEquals": {"aws:PrincipalArn": ["arn:aws:iam::111122223333:role/admin"]}}`

func (s *Statement) parsePrincipals(m map[string]any, path string, k Kind) error {
	if _, hasN := m["NotPrincipal"]; hasN {
		return malformed(path+".NotPrincipal", "%s", notPrincipalMsg)
	}
	pv, hasP := m["Principal"]
	switch {
	case hasP && k == KindIdentity:
		return malformed(path+".Principal", "not allowed in an identity or session policy")
	case !hasP && k == KindTrust:
		return malformed(path+".Principal", "required element is missing in a trust policy")
	case hasP:
		ps, err := parsePrincipalSet(pv, path+".Principal")
		s.Principal = ps
		return err
	}
	return nil
}

func parsePrincipalSet(v any, path string) (*PrincipalSet, error) {
	switch v := v.(type) {
	case string:
		if v != "*" {
			return nil, malformed(path, `a string principal must be "*"; name others as {"AWS": ...}`)
		}
		return &PrincipalSet{Any: true}, nil
	case map[string]any:
		if len(v) == 0 {
			return nil, malformed(path, "must name at least one principal")
		}
		ps := &PrincipalSet{ByType: make(map[string][]string, len(v))}
		for _, typ := range sortedKeys(v) {
			p := path + "." + typ
			switch typ {
			case "AWS", "Service", "Federated", "CanonicalUser":
			default:
				return nil, malformed(p, "unknown principal type")
			}
			ids, err := stringList(v[typ], p, false)
			if err != nil {
				return nil, err
			}
			for _, id := range ids {
				if err := checkPrincipalID(typ, id); err != nil {
					return nil, malformed(p, "%s", err)
				}
			}
			ps.ByType[typ] = ids
		}
		return ps, nil
	}
	return nil, malformed(path, `must be "*" or an object, got %s`, describe(v))
}

// checkPrincipalID rejects identifiers that AWS would refuse. In particular
// principals have no partial wildcards: "arn:aws:iam::*:role/x" must be
// written as a condition on aws:PrincipalArn instead.
func checkPrincipalID(typ, id string) error {
	if id == "" {
		return errors.New("empty principal")
	}
	if id == "*" {
		if typ != "AWS" {
			// AWS only understands "*" under "AWS" (or as the whole
			// Principal); anything else would silently never match.
			return errors.New(`"*" is only allowed as an AWS principal`)
		}
		return nil
	}
	if strings.ContainsAny(id, "*?") {
		return fmt.Errorf("principal %q: wildcards are not allowed in principals; use a condition on aws:PrincipalArn", clip(id))
	}
	if typ == "AWS" {
		if _, ok := accountOf(id); ok || strings.HasPrefix(id, "arn:") || isUniqueID(id) {
			return nil
		}
		return fmt.Errorf("principal %q: want an account ID, an ARN or a unique ID", clip(id))
	}
	return nil
}

func (s *Statement) parseActions(m map[string]any, path string, k Kind) error {
	av, hasA := m["Action"]
	nv, hasN := m["NotAction"]
	name, v := "Action", av
	switch {
	case hasA && hasN:
		return malformed(path, "Action and NotAction must not both be present")
	case !hasA && !hasN:
		return malformed(path+".Action", "required element is missing")
	case hasN:
		name, v = "NotAction", nv
	}
	p := path + "." + name
	if hasN && k == KindTrust {
		// Stricter reading (IAM's docs do not say): a NotAction in a trust
		// policy would name every action but some, which is never only the
		// role-assumption actions CreateRole allows.
		return malformed(p, "a trust policy must name its actions with Action; NotAction would cover more than the sts:AssumeRole* actions")
	}
	acts, err := stringList(v, p, false)
	if err != nil {
		return err
	}
	for _, a := range acts {
		if err := checkAction(a); err != nil {
			return malformed(p, "%s", err)
		}
		if k == KindTrust && !trustAction(a) {
			// IAM's CreateRole: "AssumeRole policy may only specify STS
			// AssumeRole actions."
			return malformed(p, "action %q: a trust policy may only specify STS role-assumption actions (%s)", clip(a), strings.Join(trustActions[:], ", "))
		}
		// Actions are case-insensitive, so both sides are lower-cased.
		s.actions = append(s.actions, compileGlob(strings.ToLower(a)))
	}
	if hasA {
		s.Action = acts
	} else {
		s.NotAction = acts
	}
	return nil
}

// checkAction applies IAM's action grammar: "*" or "service:action" with
// exactly one colon ("Actions/Condition can contain only one colon"), a
// service prefix of letters, digits, '-' and '.' without wildcards, and an
// action name of letters, digits and wildcards. IAM User Guide, "IAM JSON
// policy elements: Action" (reference_policies_elements_action.html): "An
// action is specified by a service namespace followed by a colon and the
// name of the action".
func checkAction(a string) error {
	if a == "*" {
		return nil
	}
	svc, op, ok := strings.Cut(a, ":")
	switch {
	case !ok:
		return fmt.Errorf(`action %q: want "*" or "service:action" (actions must be prefaced by a service prefix such as sts)`, clip(a))
	case strings.Contains(op, ":"):
		return fmt.Errorf("action %q: an action can contain only one colon", clip(a))
	case svc == "" || op == "":
		return fmt.Errorf(`action %q: want "*" or "service:action"`, clip(a))
	}
	for _, c := range svc {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return fmt.Errorf("action %q: service prefix %q is not valid", clip(a), clip(svc))
		}
	}
	for _, c := range op {
		// Stricter reading: AWS action names are letters and digits; '-'
		// and '_' are let through for services that use them in names.
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '*' || c == '?' || c == '-' || c == '_') {
			return fmt.Errorf("action %q: action name %q is not valid", clip(a), clip(op))
		}
	}
	return nil
}

// trustActions are the actions a role trust policy governs (IAM User
// Guide, "IAM and AWS STS condition context keys" and "Passing session
// tags in AWS STS"): assuming the role, and the session options checked
// against the trust policy.
var trustActions = [...]string{
	"sts:AssumeRole", "sts:AssumeRoleWithSAML", "sts:AssumeRoleWithWebIdentity",
	"sts:TagSession", "sts:SetSourceIdentity", "sts:SetContext",
}

// trustAction reports whether a trust policy may name action a: an sts:
// action (wildcards allowed) that covers at least one of trustActions.
// "*" alone is refused: it names every action of every service (stricter
// reading; IAM's message only says "STS AssumeRole actions").
func trustAction(a string) bool {
	svc, _, _ := strings.Cut(a, ":")
	if !strings.EqualFold(svc, "sts") {
		return false
	}
	g := compileGlob(strings.ToLower(a))
	for _, t := range trustActions {
		if g.match(strings.ToLower(t)) {
			return true
		}
	}
	return false
}

func (s *Statement) parseResources(m map[string]any, path string, k Kind, vars bool) error {
	rv, hasR := m["Resource"]
	nv, hasN := m["NotResource"]
	name, v := "Resource", rv
	switch {
	case hasR && hasN:
		return malformed(path, "Resource and NotResource must not both be present")
	case !hasR && !hasN:
		if k == KindIdentity {
			return malformed(path+".Resource", "required element is missing in an identity or session policy")
		}
		return nil
	case hasN:
		name, v = "NotResource", nv
	}
	p := path + "." + name
	if k == KindTrust {
		// IAM's CreateRole refuses them ("Has prohibited field Resource"):
		// a trust policy's resource is always the role itself.
		return malformed(p, "not allowed in a trust policy (its resource is the role itself)")
	}
	res, err := stringList(v, p, false)
	if err != nil {
		return err
	}
	for _, r := range res {
		if err := checkResource(r); err != nil {
			return malformed(p, "%s", err)
		}
		s.resources = append(s.resources, compileTemplate(r, vars))
	}
	if hasR {
		s.Resource = res
	} else {
		s.NotResource = res
	}
	return nil
}

// checkResource applies IAM's resource grammar. IAM User Guide, "IAM JSON
// policy elements: Resource" (reference_policies_elements_resource.html)
// and "IAM identifiers" (reference_identifiers.html): a resource is "*" or
// an ARN arn:partition:service:region:account-id:resource, whose region
// and account may be empty and whose resource part may hold more colons.
// Beyond the format, IAM refuses (these are its messages): a partition
// that is not a partition ("Partition "*" is not valid"), a service that
// is empty or has wildcards ("Resource vendor must be fully qualified and
// cannot contain regexes"), an IAM or S3 ARN with a region ("IAM resource
// ... cannot contain region information") and an IAM resource that is not
// "*" nor of a known type ("IAM resource path must either be "*" or start
// with user/, ...").
func checkResource(r string) error {
	if r == "*" {
		return nil
	}
	parts := strings.SplitN(r, ":", arnParts)
	if len(parts) < arnParts || parts[0] != "arn" {
		return fmt.Errorf(`resource %q: want "*" or an ARN "arn:partition:service:region:account:resource"`, clip(r))
	}
	partition, service, region, resource := parts[1], parts[2], parts[3], parts[5]
	if !knownPartition(partition) {
		return fmt.Errorf("resource %q: partition %q is not valid (want aws, aws-cn, aws-us-gov, ...; no wildcards)", clip(r), clip(partition))
	}
	if service == "" || strings.ContainsAny(service, "*?") {
		return fmt.Errorf("resource %q: the ARN's service is empty or has wildcards (the service must be fully qualified)", clip(r))
	}
	if (service == "iam" || service == "s3") && region != "" {
		return fmt.Errorf("resource %q: an %s ARN cannot contain region information", clip(r), service)
	}
	if service == "iam" && resource != "*" && !iamResourceType(resource) {
		return fmt.Errorf(`resource %q: an IAM resource must be "*" or start with one of %s`, clip(r), strings.Join(iamResourceTypes[:], ", "))
	}
	return nil
}

// partitions are AWS's partitions (the aws-partitions model).
var partitions = [...]string{"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"}

func knownPartition(p string) bool {
	for _, k := range partitions {
		if p == k {
			return true
		}
	}
	return false
}

// iamResourceTypes are the resource types IAM accepts in an iam ARN.
var iamResourceTypes = [...]string{
	"user/", "federated-user/", "role/", "group/", "instance-profile/", "mfa/", "server-certificate/",
	"policy/", "sms-mfa/", "saml-provider/", "oidc-provider/", "report/", "access-report/",
}

func iamResourceType(res string) bool {
	for _, t := range iamResourceTypes {
		if strings.HasPrefix(res, t) {
			return true
		}
	}
	return false
}

func parseConditions(v any, path string, vars bool) ([]Condition, error) {
	block, ok := v.(map[string]any)
	if !ok {
		return nil, malformed(path, "must be an object of operators")
	}
	var conds []Condition
	for _, opName := range sortedKeys(block) {
		opPath := path + "." + opName
		spec, set, ifExists, err := lookupOperator(opName)
		if err != nil {
			return nil, malformed(opPath, "%s", err)
		}
		keys, ok := block[opName].(map[string]any)
		if !ok || len(keys) == 0 {
			return nil, malformed(opPath, "must be an object of condition keys")
		}
		for _, key := range sortedKeys(keys) {
			keyPath := opPath + "." + key
			if key == "" {
				return nil, malformed(opPath, "empty condition key")
			}
			values, err := conditionValues(keys[key], keyPath)
			if err != nil {
				return nil, err
			}
			c := Condition{
				Operator: opName,
				Key:      key,
				Values:   values,
				spec:     spec,
				set:      set,
				ifExists: ifExists,
				key:      strings.ToLower(key),
				vals:     make([]condValue, len(values)),
			}
			for i, val := range values {
				cv, err := compileCondValue(spec.fam, val, vars)
				if err != nil {
					return nil, malformed(keyPath, "%s", err)
				}
				c.vals[i] = cv
			}
			conds = append(conds, c)
		}
	}
	return conds, nil
}

// stringList accepts a string or a non-empty list of strings, the shape of
// almost every policy element. Condition values (scalars=true) may also be
// JSON numbers or booleans, kept as their literal text.
func stringList(v any, path string, scalars bool) ([]string, error) {
	one := func(e any) (string, bool) {
		switch e := e.(type) {
		case string:
			return e, true
		case json.Number:
			return e.String(), scalars
		case bool:
			if e {
				return "true", scalars
			}
			return "false", scalars
		}
		return "", false
	}
	want := "a string or a list of strings"
	if scalars {
		want = "a string, number, boolean or a list of them"
	}
	if list, ok := v.([]any); ok {
		if len(list) == 0 {
			return nil, malformed(path, "must not be an empty list")
		}
		out := make([]string, len(list))
		for i, e := range list {
			s, ok := one(e)
			if !ok {
				return nil, malformed(fmt.Sprintf("%s[%d]", path, i), "must be %s, got %s", want, describe(e))
			}
			out[i] = s
		}
		return out, nil
	}
	s, ok := one(v)
	if !ok {
		return nil, malformed(path, "must be %s, got %s", want, describe(v))
	}
	return []string{s}, nil
}

// conditionValues is stringList for condition values, which IAM also
// accepts as an empty list: a positive operator then matches nothing and a
// negated one everything. JSON null is refused, as IAM refuses it ("Syntax
// errors in policy"). IAM User Guide, "IAM JSON policy elements: Condition
// operators" (reference_policies_elements_condition_operators.html).
func conditionValues(v any, path string) ([]string, error) {
	if list, ok := v.([]any); ok && len(list) == 0 {
		return []string{}, nil
	}
	return stringList(v, path, true)
}

// describe names a decoded JSON value's type for error messages without
// echoing possibly large content.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("%q", clip(v))
	case json.Number:
		return "number " + v.String()
	case bool:
		return fmt.Sprintf("%t", v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// clip shortens user-supplied text quoted in error messages, which may end
// up in logs or API responses.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// accountOf recognises the two spellings of an account-level principal:
// "123456789012" and "arn:<partition>:iam::123456789012:root".
func accountOf(id string) (string, bool) {
	if isAccountID(id) {
		return id, true
	}
	parts := strings.Split(id, ":")
	if len(parts) == 6 && parts[0] == "arn" && parts[2] == "iam" && parts[3] == "" &&
		isAccountID(parts[4]) && parts[5] == "root" {
		return parts[4], true
	}
	return "", false
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isUniqueID recognises IAM unique IDs (AIDA..., AROA...), which AWS shows
// in a trust policy in place of a deleted principal's ARN.
func isUniqueID(s string) bool {
	if len(s) < 16 || len(s) > 128 || s[0] != 'A' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
