package iampolicy

import (
	"strings"
	"testing"
)

// The tests in this file each implement one rule of the IAM User Guide (or,
// where said, of the IAM policy simulator); the sentence is quoted with its
// page so a failing case says which AWS behaviour it is about.

// Rule 1. IAM User Guide, "AWS JSON policy elements: NotPrincipal"
// (reference_policies_elements_notprincipal.html): "You cannot use the
// NotPrincipal element in an IAM identity-based policy nor in an IAM role
// trust policy" and "NotPrincipal must be used with "Effect":"Deny". Using it
// with "Effect":"Allow" is not supported."
func TestRuleNotPrincipalRefused(t *testing.T) {
	allow := doc(`{"Effect":"Allow","NotPrincipal":{"AWS":"` + userARN + `"},"Action":"sts:AssumeRole"}`)
	deny := doc(`[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"},
		{"Effect":"Deny","NotPrincipal":{"AWS":"` + userARN + `"},"Action":"sts:AssumeRole"}]`)
	identityDeny := doc(`[{"Effect":"Allow","Action":"*","Resource":"*"},
		{"Effect":"Deny","NotPrincipal":"*","Action":"*","Resource":"*"}]`)
	tests := []struct {
		name, doc, path string
		parse           func([]byte) (*Policy, error)
	}{
		{"trust Allow", allow, "Statement.NotPrincipal", func(b []byte) (*Policy, error) { return ParseKind(b, KindTrust) }},
		{"trust Deny", deny, "Statement[1].NotPrincipal", func(b []byte) (*Policy, error) { return ParseKind(b, KindTrust) }},
		{"identity Deny", identityDeny, "Statement[1].NotPrincipal", func(b []byte) (*Policy, error) { return ParseKind(b, KindIdentity) }},
		{"any kind", deny, "Statement[1].NotPrincipal", Parse},
		{"with Principal too", doc(`{"Effect":"Deny","Principal":"*","NotPrincipal":"*","Action":"sts:AssumeRole"}`), "Statement.NotPrincipal", Parse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.parse([]byte(tt.doc))
			checkMalformed(t, err, tt.path, "NotPrincipal is not allowed")
			if err != nil && !strings.Contains(err.Error(), "aws:PrincipalArn") {
				t.Errorf("error %q does not point to a condition on aws:PrincipalArn", err)
			}
		})
	}
}

// Rule 2. IAM User Guide, "IAM JSON policy elements: Condition operators"
// (reference_policies_elements_condition_operators.html): "If the policy
// condition requires that the key is not matched, such as StringNotLike or
// ArnNotLike, and the right key is not present, the condition is true."
// And "IAM policy elements: Variables and tags", "Policy variables with no
// value" (reference_policies_variables.html#policy-vars-no-value):
// "Inverted condition operators like StringNotEquals or StringNotLike do
// match against a null value", with the example in which "Access is
// explicitly denied when aws:principaltag/Team is not set".
func TestRuleNegatedOperatorsMissingKeys(t *testing.T) {
	negated := []struct{ op, value, present string }{
		{"StringNotEquals", "v", "v"},
		{"StringNotEqualsIgnoreCase", "v", "V"},
		{"StringNotLike", "v*", "vw"},
		{"ArnNotEquals", roleARN, roleARN},
		{"ArnNotLike", "arn:aws:iam::*:role/*", roleARN},
		{"NotIpAddress", "10.0.0.0/8", "10.1.2.3"},
		{"NumericNotEquals", "5", "5.0"},
		{"DateNotEquals", "2024-01-01T00:00:00Z", "1704067200"},
	}
	for _, n := range negated {
		cond := `{"` + n.op + `":{"k":"` + n.value + `"}}`
		t.Run(n.op+" absent key is true", func(t *testing.T) {
			if !condHolds(t, cond, nil) {
				t.Errorf("%s with the key absent = false, want true", cond)
			}
		})
		t.Run(n.op+" matching value is false", func(t *testing.T) {
			// Guards against a negated operator that is simply always true.
			if condHolds(t, cond, ctxMap{"k": {n.present}}) {
				t.Errorf("%s with k=%q = true, want false", cond, n.present)
			}
		})
		t.Run(n.op+"IfExists absent key is true", func(t *testing.T) {
			if !condHolds(t, `{"`+n.op+`IfExists":{"k":"`+n.value+`"}}`, nil) {
				t.Errorf("%sIfExists with the key absent = false, want true", n.op)
			}
		})
	}

	// Policy variables with no value.
	vars := []struct {
		name, cond string
		ctx        ctxMap
		want       bool
	}{
		{"StringNotEquals with an unset variable matches", `{"StringNotEquals":{"k":"${aws:PrincipalTag/Team}"}}`, ctxMap{"k": {"red"}}, true},
		{"StringNotLike with an unset variable matches", `{"StringNotLike":{"k":"${aws:PrincipalTag/Team}-*"}}`, ctxMap{"k": {"red-1"}}, true},
		{"StringNotEqualsIgnoreCase with an unset variable matches", `{"StringNotEqualsIgnoreCase":{"k":"${aws:PrincipalTag/Team}"}}`, ctxMap{"k": {"red"}}, true},
		{"ArnNotLike with an unset variable matches", `{"ArnNotLike":{"k":"arn:aws:iam::${aws:PrincipalAccount}:role/*"}}`, ctxMap{"k": {roleARN}}, true},
		{"StringEquals with an unset variable does not match", `{"StringEquals":{"k":"${aws:PrincipalTag/Team}"}}`, ctxMap{"k": {"red"}}, false},
		{"StringNotEquals with a set variable that equals is false", `{"StringNotEquals":{"k":"${aws:PrincipalTag/Team}"}}`, ctxMap{"k": {"red"}, "aws:PrincipalTag/Team": {"red"}}, false},
		{"StringNotEquals with a set variable that differs is true", `{"StringNotEquals":{"k":"${aws:PrincipalTag/Team}"}}`, ctxMap{"k": {"red"}, "aws:PrincipalTag/Team": {"blue"}}, true},
	}
	for _, tt := range vars {
		t.Run(tt.name, func(t *testing.T) {
			if got := condHolds(t, tt.cond, tt.ctx); got != tt.want {
				t.Errorf("%s with %v = %v, want %v", tt.cond, tt.ctx, got, tt.want)
			}
		})
	}

	// The guide's example: a Deny that must catch a principal without the tag.
	p := mustParse(t, doc(`[{"Sid":"Allow","Effect":"Allow","Action":"s3:GetObject","Resource":"*"},
		{"Sid":"TeamOnly","Effect":"Deny","Action":"s3:GetObject","Resource":"*",
		 "Condition":{"StringNotEquals":{"s3:ExistingObjectTag/Team":"${aws:PrincipalTag/Team}"}}}]`))
	for _, tc := range []struct {
		name string
		ctx  ctxMap
		want Decision
	}{
		{"same team", ctxMap{"s3:ExistingObjectTag/Team": {"red"}, "aws:PrincipalTag/Team": {"red"}}, Allow},
		{"other team", ctxMap{"s3:ExistingObjectTag/Team": {"red"}, "aws:PrincipalTag/Team": {"blue"}}, ExplicitDeny},
		{"principal without the tag", ctxMap{"s3:ExistingObjectTag/Team": {"red"}}, ExplicitDeny},
	} {
		t.Run("guide example: "+tc.name, func(t *testing.T) {
			got := p.Evaluate(Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/o", Context: tc.ctx})
			if got.Decision != tc.want {
				t.Errorf("Decision = %v, want %v", got.Decision, tc.want)
			}
		})
	}
}

// Rule 3. IAM User Guide, "Single-valued vs. multivalued context keys"
// (reference_policies_condition-single-vs-multi-valued-context-keys.html):
// ForAllValues "also returns true if there are no context keys in the
// request", and "If the key values in the request resolve to an empty data
// set (for example, an empty string), a condition operator modified by
// ForAllValues returns true, and a condition operator modified by
// ForAnyValue returns false." The qualifier applies to Null as to every
// operator (the rule; PMapper's simulator-checked Null handling
// does the same).
func TestRuleSetQualifiersAndNull(t *testing.T) {
	tests := []struct {
		name, cond string
		ctx        ctxMap
		want       bool
	}{
		{"ForAllValues:StringEquals absent", `{"ForAllValues:StringEquals":{"k":"a"}}`, nil, true},
		{"ForAllValues:StringNotEquals absent", `{"ForAllValues:StringNotEquals":{"k":"a"}}`, nil, true},
		{"ForAllValues:ArnLike absent", `{"ForAllValues:ArnLike":{"k":"arn:aws:iam::*:role/*"}}`, nil, true},
		{"ForAllValues:NumericLessThan absent", `{"ForAllValues:NumericLessThan":{"k":"5"}}`, nil, true},
		{"ForAnyValue:StringEquals absent", `{"ForAnyValue:StringEquals":{"k":"a"}}`, nil, false},
		{"ForAnyValue:StringNotLike absent", `{"ForAnyValue:StringNotLike":{"k":"a*"}}`, nil, false},
		{"ForAnyValue:NotIpAddress absent", `{"ForAnyValue:NotIpAddress":{"k":"10.0.0.0/8"}}`, nil, false},
		{"ForAnyValue:ArnNotEquals absent", `{"ForAnyValue:ArnNotEquals":{"k":"arn:aws:iam::1:role/x"}}`, nil, false},
		// Null keeps its qualifier.
		{"Null true absent", `{"Null":{"k":"true"}}`, nil, true},
		{"Null false present", `{"Null":{"k":"false"}}`, ctxMap{"k": {"a"}}, true},
		{"ForAllValues:Null true absent", `{"ForAllValues:Null":{"k":"true"}}`, nil, true},
		{"ForAllValues:Null false absent", `{"ForAllValues:Null":{"k":"false"}}`, nil, true},
		{"ForAllValues:Null true present", `{"ForAllValues:Null":{"k":"true"}}`, ctxMap{"k": {"a", "b"}}, false},
		{"ForAllValues:Null false present", `{"ForAllValues:Null":{"k":"false"}}`, ctxMap{"k": {"a", "b"}}, true},
		{"ForAnyValue:Null true absent", `{"ForAnyValue:Null":{"k":"true"}}`, nil, false},
		{"ForAnyValue:Null false absent", `{"ForAnyValue:Null":{"k":"false"}}`, nil, false},
		{"ForAnyValue:Null false present", `{"ForAnyValue:Null":{"k":"false"}}`, ctxMap{"k": {"a"}}, true},
		{"ForAnyValue:Null true present", `{"ForAnyValue:Null":{"k":"true"}}`, ctxMap{"k": {"a"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := condHolds(t, tt.cond, tt.ctx); got != tt.want {
				t.Errorf("%s with %v = %v, want %v", tt.cond, tt.ctx, got, tt.want)
			}
		})
	}
}

// Rule 4. The IAM policy simulator, as PMapper validated against the
// Simulator API (principalmapper/querying/local_policy_simulation.py,
// _get_arn_match: "policy simulator behavior: reject if provided value
// isn't a legit ARN"): with a request value that is not an ARN, ArnLike and
// ArnEquals are false, and so are ArnNotLike and ArnNotEquals.
func TestRuleARNOperatorsWithNonARNValues(t *testing.T) {
	for _, op := range []string{"ArnLike", "ArnEquals", "ArnNotLike", "ArnNotEquals"} {
		for _, v := range []string{"not-an-arn", "role/x", "arn:aws:iam::1", "urn:aws:iam::1:role/x", "arn::iam::1:role/x", "arn:aws:iam::1:"} {
			t.Run(op+" "+v, func(t *testing.T) {
				if condHolds(t, `{"`+op+`":{"k":"arn:aws:iam::*:role/admin"}}`, ctxMap{"k": {v}}) {
					t.Errorf("%s with the non-ARN %q = true, want false", op, v)
				}
			})
		}
	}
	// The same operators on real ARNs, so the refusal above is specific.
	for _, tt := range []struct {
		op, value string
		want      bool
	}{
		{"ArnLike", "arn:aws:iam::1:role/admin", true},
		{"ArnEquals", "arn:aws:iam::1:role/admin", true},
		{"ArnNotLike", "arn:aws:iam::1:role/other", true},
		{"ArnNotEquals", "arn:aws:iam::1:role/admin", false},
	} {
		t.Run(tt.op+" on an ARN", func(t *testing.T) {
			if got := condHolds(t, `{"`+tt.op+`":{"k":"arn:aws:iam::*:role/admin"}}`, ctxMap{"k": {tt.value}}); got != tt.want {
				t.Errorf("%s with %q = %v, want %v", tt.op, tt.value, got, tt.want)
			}
		})
	}
}

// Rule 5. Validation as IAM's CreateRole / CreatePolicy / AssumeRole do it.
func TestRuleValidationParity(t *testing.T) {
	trust := func(stmt string) string { return doc(stmt) }
	tests := []struct {
		name     string
		doc      string
		kind     Kind
		wantPath string // "" = accepted
		wantMsg  string
	}{
		// Trust policies: IAM User Guide, "IAM JSON policy elements:
		// Principal" / "Roles terms and concepts": a role trust policy is a
		// resource-based policy whose resource is the role; CreateRole says
		// "Has prohibited field Resource" and "AssumeRole policy may only
		// specify STS AssumeRole actions."
		{"trust Resource refused", trust(`{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Resource":"*"}`), KindTrust, "Statement.Resource", "not allowed in a trust policy"},
		{"trust NotResource refused", trust(`{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","NotResource":"arn:aws:iam::1:role/x"}`), KindTrust, "Statement.NotResource", "not allowed in a trust policy"},
		{"trust s3 action refused", trust(`{"Effect":"Allow","Principal":"*","Action":["sts:AssumeRole","s3:GetObject"]}`), KindTrust, "Statement.Action", "STS role-assumption actions"},
		{"trust non-assume sts action refused", trust(`{"Effect":"Allow","Principal":"*","Action":"sts:GetCallerIdentity"}`), KindTrust, "Statement.Action", "STS role-assumption actions"},
		{"trust star action refused (stricter reading)", trust(`{"Effect":"Allow","Principal":"*","Action":"*"}`), KindTrust, "Statement.Action", "STS role-assumption actions"},
		{"trust NotAction refused (stricter reading)", trust(`{"Effect":"Deny","Principal":"*","NotAction":"sts:AssumeRole"}`), KindTrust, "Statement.NotAction", "NotAction"},
		{"trust assume actions accepted", trust(`{"Effect":"Allow","Principal":"*","Action":["sts:AssumeRole","sts:AssumeRoleWithWebIdentity","sts:AssumeRoleWithSAML","sts:TagSession","sts:SetSourceIdentity","sts:SetContext"]}`), KindTrust, "", ""},
		{"trust sts wildcards accepted", trust(`{"Effect":"Allow","Principal":"*","Action":["sts:*","sts:Assume*","STS:assumerole"]}`), KindTrust, "", ""},
		// Every policy: "Actions/Condition can contain only one colon" and
		// "Resource vendor must be fully qualified" (IAM's own messages);
		// IAM User Guide, reference_policies_elements_action.html and
		// reference_identifiers.html (the ARN format).
		{"two colons in an action", doc(`{"Effect":"Allow","Action":"s3:Get:Object","Resource":"*"}`), KindIdentity, "Statement.Action", "only one colon"},
		{"two colons in a trust action", trust(`{"Effect":"Allow","Principal":"*","Action":"sts:Assume:Role"}`), KindTrust, "Statement.Action", "only one colon"},
		{"wildcard service prefix", doc(`{"Effect":"Allow","Action":"s*:GetObject","Resource":"*"}`), KindIdentity, "Statement.Action", "service prefix"},
		{"space in an action name", doc(`{"Effect":"Allow","Action":"s3:Get Object","Resource":"*"}`), KindIdentity, "Statement.Action", "action name"},
		{"dotted service prefix accepted", doc(`{"Effect":"Allow","Action":"execute-api.x:Invoke","Resource":"*"}`), KindIdentity, "", ""},
		{"ARN with an empty service", doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws::us-east-1:111122223333:thing"}`), KindIdentity, "Statement.Resource", "service is empty"},
		{"ARN with a wildcard service", doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s*:::b"}`), KindIdentity, "Statement.Resource", "wildcards"},
		{"ARN with an empty partition", doc(`{"Effect":"Allow","Action":"*","Resource":"arn::s3:::b"}`), KindIdentity, "Statement.Resource", `partition "" is not valid`},
		{"ARN with a wildcard partition", doc(`{"Effect":"Allow","Action":"*","Resource":"arn:*:s3:::b/*"}`), KindIdentity, "Statement.Resource", `partition "*" is not valid`},
		{"NotResource ARN with an empty service", doc(`{"Effect":"Allow","Action":"*","NotResource":"arn:aws:::1:x"}`), KindIdentity, "Statement.NotResource", "service is empty"},
		{"ARN with too few parts", doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:b"}`), KindIdentity, "Statement.Resource", "ARN"},
		{"IAM ARN with a region", doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam:us-east-1:111122223333:role/x"}`), KindIdentity, "Statement.Resource", "cannot contain region information"},
		{"S3 ARN with a region", doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:us-east-1::b"}`), KindIdentity, "Statement.Resource", "cannot contain region information"},
		{"IAM ARN of no known type", doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::111122223333:robot/x"}`), KindIdentity, "Statement.Resource", "must be \"*\" or start with"},
		// Unusual but valid ARNs.
		{"ARN resource with colons and spaces", doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:logs:us-east-1:1:log-group:a b:log-stream:c"}`), KindIdentity, "", ""},
		{"ARN with wildcard region and account, other partitions", doc(`{"Effect":"Allow","Action":"*","Resource":["arn:aws-us-gov:ec2:*:*:instance/*","arn:aws-cn:s3:::b/*","arn:aws:iam::*:role/*","arn:aws:iam::111122223333:*","arn:aws:s3:::"]}`), KindIdentity, "", ""},
		// Condition values: empty lists accepted, null refused ("Syntax
		// errors in policy"); dates as IAM's parser takes them.
		{"empty condition value list", doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":[]}}}`), KindIdentity, "", ""},
		{"null condition value", doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":null}}}`), KindIdentity, "Statement.Condition.StringEquals.k", "null"},
		{"null in a condition value list", doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":["a",null]}}}`), KindIdentity, "Statement.Condition.StringEquals.k[1]", "null"},
		{"null Sid", doc(`{"Sid":null,"Effect":"Allow","Action":"*","Resource":"*"}`), KindIdentity, "Statement.Sid", "string"},
		{"null Resource", doc(`{"Effect":"Allow","Action":"*","Resource":null}`), KindIdentity, "Statement.Resource", "null"},
		{"null Condition", doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":null}`), KindIdentity, "Statement.Condition", "object"},
		{"unusual dates", doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":["2024-1-5","2024-01","2024-01-01t10:00:00z","2024-01-01T10:00:00+02","2024-01-01T10:00:00.123456789-05:30","2024-01-01T10","9999-12-31T23:59:59Z","9223372036854775807","0"]}}}`), KindIdentity, "", ""},
		{"date month 13", doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2024-13-01"}}}`), KindIdentity, "Statement.Condition.DateLessThan.aws:CurrentTime", "month"},
		{"date hour 24", doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2024-01-01T24:00:00Z"}}}`), KindIdentity, "Statement.Condition.DateLessThan.aws:CurrentTime", "hour"},
		{"epoch past 2^63-1", doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"9223372036854775808"}}}`), KindIdentity, "Statement.Condition.DateLessThan.aws:CurrentTime", "out of range"},
		{"negative epoch", doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"-1"}}}`), KindIdentity, "Statement.Condition.DateLessThan.aws:CurrentTime", "invalid date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKind([]byte(tt.doc), tt.kind)
			checkMalformed(t, err, tt.wantPath, tt.wantMsg)
		})
	}

	// How the accepted forms evaluate.
	evals := []struct {
		name, cond string
		ctx        ctxMap
		want       bool
	}{
		{"empty list: StringEquals matches nothing", `{"StringEquals":{"k":[]}}`, ctxMap{"k": {"a"}}, false},
		{"empty list: StringNotEquals matches everything", `{"StringNotEquals":{"k":[]}}`, ctxMap{"k": {"a"}}, true},
		{"empty list: ForAllValues absent key", `{"ForAllValues:StringEquals":{"k":[]}}`, nil, true},
		{"empty list: ForAllValues present key", `{"ForAllValues:StringEquals":{"k":[]}}`, ctxMap{"k": {"a"}}, false},
		{"empty list: Null", `{"Null":{"k":[]}}`, nil, false},
		{"one-digit month and day", `{"DateEquals":{"d":"2024-1-5"}}`, ctxMap{"d": {"2024-01-05T00:00:00Z"}}, true},
		{"lower-case t and z", `{"DateEquals":{"d":"2024-01-01t10:00:00z"}}`, ctxMap{"d": {"2024-01-01T10:00:00Z"}}, true},
		{"hour-only zone offset", `{"DateEquals":{"d":"2024-01-01T12:00:00+02"}}`, ctxMap{"d": {"2024-01-01T10:00:00Z"}}, true},
		{"negative zone offset", `{"DateEquals":{"d":"2024-01-01T04:30:00-05:30"}}`, ctxMap{"d": {"2024-01-01T10:00:00Z"}}, true},
		{"year and month only", `{"DateEquals":{"d":"2024-02"}}`, ctxMap{"d": {"2024-02-01T00:00:00Z"}}, true},
		{"eight digits are epoch seconds, as in IAM", `{"DateLessThan":{"d":"20240101"}}`, ctxMap{"d": {"1970-08-23T00:00:00Z"}}, true},
		{"year 9999", `{"DateLessThan":{"d":"9999-12-31T23:59:59Z"}}`, ctxMap{"d": {"2200-01-01T00:00:00Z"}}, true},
		{"huge epoch is later than any date", `{"DateGreaterThan":{"d":"2999-01-01"}}`, ctxMap{"d": {"9223372036854775807"}}, true},
	}
	for _, tt := range evals {
		t.Run(tt.name, func(t *testing.T) {
			if got := condHolds(t, tt.cond, tt.ctx); got != tt.want {
				t.Errorf("%s with %v = %v, want %v", tt.cond, tt.ctx, got, tt.want)
			}
		})
	}
}

// TestExplainTraces: Explain decides as Evaluate does and names, for each
// statement, the first element that did not match.
func TestExplainTraces(t *testing.T) {
	p := mustParse(t, doc(`[
		{"Sid":"OtherAction","Effect":"Allow","Principal":"*","Action":"sts:TagSession"},
		{"Sid":"OtherPrincipal","Effect":"Allow","Principal":{"AWS":"`+outsider.ARN+`"},"Action":"sts:AssumeRole"},
		{"Sid":"NeedsExternalID","Effect":"Allow","Principal":{"AWS":"`+userARN+`"},"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:SecureTransport":"true"},"StringEquals":{"sts:ExternalId":"x"}}},
		{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::1:role/elsewhere"}]`))
	req := Request{Principal: alice, Action: "sts:AssumeRole", Resource: roleARN, Context: map[string][]string{"aws:SecureTransport": {"true"}}}
	res, traces := Explain([]*Policy{p}, req)
	if want := p.Evaluate(req); res != want {
		t.Fatalf("Explain result %+v, Evaluate %+v", res, want)
	}
	if res.Decision != ImplicitDeny || len(traces) != 4 {
		t.Fatalf("Decision = %v with %d traces, want implicitDeny with 4", res.Decision, len(traces))
	}
	wants := []struct {
		el  Element
		why string
	}{
		{ElementAction, "the action is not among its actions"},
		{ElementPrincipal, "its Principal does not name the caller"},
		{ElementCondition, `condition StringEquals sts:ExternalId ["x"] is false (the key is absent from the request)`},
		{ElementResource, "the resource is not among its resources"},
	}
	for i, w := range wants {
		if traces[i].Failed != w.el || traces[i].Why() != w.why || traces[i].Matched {
			t.Errorf("trace %d (%s) = %v %q, want %v %q", i, traces[i].Statement.Name(), traces[i].Failed, traces[i].Why(), w.el, w.why)
		}
	}
	if got := traces[2].Statement.Name(); got != `Statement[2] (Sid "NeedsExternalID")` {
		t.Errorf("Name = %q", got)
	}
	req.Context["sts:ExternalId"] = []string{"y"}
	if _, traces = Explain([]*Policy{p}, req); traces[2].Why() != `condition StringEquals sts:ExternalId ["x"] is false (the request has ["y"])` {
		t.Errorf("with another external id: %q", traces[2].Why())
	}
	req.Context["sts:ExternalId"] = []string{"x"}
	res, traces = Explain([]*Policy{p}, req)
	if res.Decision != Allow || !traces[2].Matched || traces[2].Why() != "applies" || traces[2].PrincipalMatch != PrincipalDirect {
		t.Errorf("with the external id: %v, trace %+v", res.Decision, traces[2])
	}
}
