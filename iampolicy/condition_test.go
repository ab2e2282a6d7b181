package iampolicy

import (
	"strings"
	"testing"
)

type ctxMap = map[string][]string

// condHolds parses an allow-all statement guarded by cond and reports
// whether it allows a request with the given context.
func condHolds(t *testing.T, cond string, ctx ctxMap) bool {
	t.Helper()
	p := mustParse(t, doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":`+cond+`}`))
	return p.Evaluate(Request{Principal: alice, Action: "sts:AssumeRole", Resource: roleARN, Context: ctx}).Decision == Allow
}

func TestConditionOperators(t *testing.T) {
	tests := []struct {
		name string
		cond string
		ctx  ctxMap
		want bool
	}{
		// String.
		{"StringEquals match", `{"StringEquals":{"k":"v"}}`, ctxMap{"k": {"v"}}, true},
		{"StringEquals is case-sensitive", `{"StringEquals":{"k":"v"}}`, ctxMap{"k": {"V"}}, false},
		{"StringEquals values are ORed", `{"StringEquals":{"k":["a","b"]}}`, ctxMap{"k": {"b"}}, true},
		{"StringEquals star is literal", `{"StringEquals":{"k":"a*"}}`, ctxMap{"k": {"ab"}}, false},
		{"StringEquals missing key is false", `{"StringEquals":{"k":"v"}}`, nil, false},
		{"StringNotEquals different value", `{"StringNotEquals":{"k":"v"}}`, ctxMap{"k": {"w"}}, true},
		{"StringNotEquals same value", `{"StringNotEquals":{"k":"v"}}`, ctxMap{"k": {"v"}}, false},
		{"StringNotEquals must match none of the values", `{"StringNotEquals":{"k":["a","b"]}}`, ctxMap{"k": {"b"}}, false},
		{"StringNotEquals missing key is true", `{"StringNotEquals":{"k":"v"}}`, nil, true},
		{"StringEqualsIgnoreCase", `{"StringEqualsIgnoreCase":{"k":"Value"}}`, ctxMap{"k": {"vALUE"}}, true},
		{"StringEqualsIgnoreCase mismatch", `{"StringEqualsIgnoreCase":{"k":"Value"}}`, ctxMap{"k": {"other"}}, false},
		{"StringNotEqualsIgnoreCase same value other case", `{"StringNotEqualsIgnoreCase":{"k":"Value"}}`, ctxMap{"k": {"VALUE"}}, false},
		{"StringNotEqualsIgnoreCase different", `{"StringNotEqualsIgnoreCase":{"k":"Value"}}`, ctxMap{"k": {"x"}}, true},
		{"StringLike star", `{"StringLike":{"k":"ci-*"}}`, ctxMap{"k": {"ci-build-1"}}, true},
		{"StringLike question mark", `{"StringLike":{"k":"v?"}}`, ctxMap{"k": {"v1"}}, true},
		{"StringLike is case-sensitive", `{"StringLike":{"k":"ci-*"}}`, ctxMap{"k": {"CI-x"}}, false},
		{"StringLike escape ${*} is literal", `{"StringLike":{"k":"a${*}"}}`, ctxMap{"k": {"a*"}}, true},
		{"StringLike escape ${*} does not wildcard", `{"StringLike":{"k":"a${*}"}}`, ctxMap{"k": {"ab"}}, false},
		{"StringLike escapes ${?} and ${$}", `{"StringLike":{"k":"${?}${$}"}}`, ctxMap{"k": {"?$"}}, true},
		{"StringNotLike match", `{"StringNotLike":{"k":"ci-*"}}`, ctxMap{"k": {"ci-x"}}, false},
		{"StringNotLike no match", `{"StringNotLike":{"k":"ci-*"}}`, ctxMap{"k": {"dev"}}, true},
		{"StringNotLike missing key is true", `{"StringNotLike":{"k":"ci-*"}}`, nil, true},
		// Numeric.
		{"NumericEquals", `{"NumericEquals":{"n":"10"}}`, ctxMap{"n": {"10.0"}}, true},
		{"NumericEquals JSON number", `{"NumericEquals":{"n":10}}`, ctxMap{"n": {"10"}}, true},
		{"NumericNotEquals", `{"NumericNotEquals":{"n":["1","2"]}}`, ctxMap{"n": {"3"}}, true},
		{"NumericNotEquals equal", `{"NumericNotEquals":{"n":["1","2"]}}`, ctxMap{"n": {"2"}}, false},
		{"NumericLessThan", `{"NumericLessThan":{"n":"3600"}}`, ctxMap{"n": {"900"}}, true},
		{"NumericLessThan equal is false", `{"NumericLessThan":{"n":"3600"}}`, ctxMap{"n": {"3600"}}, false},
		{"NumericLessThanEquals", `{"NumericLessThanEquals":{"n":"3600"}}`, ctxMap{"n": {"3600"}}, true},
		{"NumericGreaterThan", `{"NumericGreaterThan":{"n":"1"}}`, ctxMap{"n": {"1.5"}}, true},
		{"NumericGreaterThanEquals", `{"NumericGreaterThanEquals":{"n":"2"}}`, ctxMap{"n": {"1"}}, false},
		{"Numeric request value not a number", `{"NumericLessThan":{"n":"5"}}`, ctxMap{"n": {"abc"}}, false},
		{"NumericNotEquals request value not a number", `{"NumericNotEquals":{"n":"5"}}`, ctxMap{"n": {"abc"}}, false},
		// Date.
		{"DateEquals ISO and epoch", `{"DateEquals":{"d":"2024-01-01T00:00:00Z"}}`, ctxMap{"d": {"1704067200"}}, true},
		{"DateNotEquals", `{"DateNotEquals":{"d":"2024-01-01"}}`, ctxMap{"d": {"2024-01-02T00:00:00Z"}}, true},
		{"DateLessThan", `{"DateLessThan":{"d":"2024-01-01T00:00:00Z"}}`, ctxMap{"d": {"2023-12-31T23:59:59Z"}}, true},
		{"DateLessThan offset", `{"DateLessThan":{"d":"2024-01-01T01:00:00+02:00"}}`, ctxMap{"d": {"2023-12-31T23:30:00Z"}}, false},
		{"DateLessThanEquals", `{"DateLessThanEquals":{"d":"1704067200"}}`, ctxMap{"d": {"2024-01-01T00:00:00Z"}}, true},
		{"DateGreaterThan", `{"DateGreaterThan":{"d":"2024-01-01T00:00:00Z"}}`, ctxMap{"d": {"2024-06-01T12:00:00.123Z"}}, true},
		{"DateGreaterThanEquals", `{"DateGreaterThanEquals":{"d":"2024-01-01T00:00:00Z"}}`, ctxMap{"d": {"2023-01-01T00:00:00Z"}}, false},
		{"Date request value not a date", `{"DateLessThan":{"d":"2024-01-01"}}`, ctxMap{"d": {"soon"}}, false},
		// Bool.
		{"Bool true", `{"Bool":{"b":"true"}}`, ctxMap{"b": {"true"}}, true},
		{"Bool JSON boolean", `{"Bool":{"b":true}}`, ctxMap{"b": {"true"}}, true},
		{"Bool mismatch", `{"Bool":{"b":"true"}}`, ctxMap{"b": {"false"}}, false},
		{"Bool missing key is false", `{"Bool":{"b":"false"}}`, nil, false},
		{"BoolIfExists missing key is true", `{"BoolIfExists":{"b":"true"}}`, nil, true},
		// Binary.
		{"BinaryEquals base64 request value", `{"BinaryEquals":{"k":"QmluYXJ5"}}`, ctxMap{"k": {"QmluYXJ5"}}, true},
		{"BinaryEquals raw request value", `{"BinaryEquals":{"k":"QmluYXJ5"}}`, ctxMap{"k": {"Binary"}}, true},
		{"BinaryEquals mismatch", `{"BinaryEquals":{"k":"QmluYXJ5"}}`, ctxMap{"k": {"b3RoZXI="}}, false},
		// IP.
		{"IpAddress IPv4 CIDR", `{"IpAddress":{"ip":"10.0.0.0/8"}}`, ctxMap{"ip": {"10.1.2.3"}}, true},
		{"IpAddress outside", `{"IpAddress":{"ip":"10.0.0.0/8"}}`, ctxMap{"ip": {"192.168.0.1"}}, false},
		{"IpAddress single address", `{"IpAddress":{"ip":"203.0.113.7"}}`, ctxMap{"ip": {"203.0.113.7"}}, true},
		{"IpAddress IPv6 CIDR", `{"IpAddress":{"ip":"2001:db8::/32"}}`, ctxMap{"ip": {"2001:db8:1::5"}}, true},
		{"IpAddress IPv4-mapped client", `{"IpAddress":{"ip":"10.0.0.0/8"}}`, ctxMap{"ip": {"::ffff:10.0.0.1"}}, true},
		{"IpAddress IPv4 rule never matches IPv6", `{"IpAddress":{"ip":"0.0.0.0/0"}}`, ctxMap{"ip": {"2001:db8::1"}}, false},
		{"IpAddress unmasked CIDR", `{"IpAddress":{"ip":"10.1.2.3/8"}}`, ctxMap{"ip": {"10.9.9.9"}}, true},
		{"NotIpAddress outside", `{"NotIpAddress":{"ip":["10.0.0.0/8","192.168.0.0/16"]}}`, ctxMap{"ip": {"8.8.8.8"}}, true},
		{"NotIpAddress inside one", `{"NotIpAddress":{"ip":["10.0.0.0/8","192.168.0.0/16"]}}`, ctxMap{"ip": {"192.168.1.1"}}, false},
		{"IpAddress request value not an address", `{"IpAddress":{"ip":"0.0.0.0/0"}}`, ctxMap{"ip": {"nope"}}, false},
		// ARN.
		{"ArnLike component wildcards", `{"ArnLike":{"a":"arn:aws:iam::*:role/team/*"}}`, ctxMap{"a": {roleARN}}, true},
		{"ArnEquals takes wildcards like ArnLike", `{"ArnEquals":{"a":"arn:aws:iam::111122223333:role/*"}}`, ctxMap{"a": {roleARN}}, true},
		{"ArnLike star does not cross components", `{"ArnLike":{"a":"arn:aws:iam::*:role/x"}}`, ctxMap{"a": {"arn:aws:iam::1:2:role/x"}}, false},
		{"ArnLike resource may contain colons", `{"ArnLike":{"a":"arn:aws:logs:*:*:log-group:x:*"}}`, ctxMap{"a": {"arn:aws:logs:us-east-1:1:log-group:x:log-stream:y"}}, true},
		{"ArnLike non-ARN request value", `{"ArnLike":{"a":"arn:aws:iam::*:role/*"}}`, ctxMap{"a": {"role/x"}}, false},
		{"ArnNotLike match", `{"ArnNotLike":{"a":"arn:aws:iam::*:role/team/*"}}`, ctxMap{"a": {roleARN}}, false},
		{"ArnNotEquals other", `{"ArnNotEquals":{"a":"arn:aws:iam::*:role/admin"}}`, ctxMap{"a": {roleARN}}, true},
		{"ArnNotLike missing key is true", `{"ArnNotLike":{"a":"arn:*:*:*:*:*"}}`, nil, true},
		// Null.
		{"Null true when absent", `{"Null":{"k":"true"}}`, nil, true},
		{"Null true when present", `{"Null":{"k":"true"}}`, ctxMap{"k": {"x"}}, false},
		{"Null false when present", `{"Null":{"k":false}}`, ctxMap{"k": {"x"}}, true},
		{"Null false when absent", `{"Null":{"k":"false"}}`, nil, false},
		{"Null empty value list is absent", `{"Null":{"k":"true"}}`, ctxMap{"k": {}}, true},
		// IfExists.
		{"StringEqualsIfExists absent", `{"StringEqualsIfExists":{"k":"v"}}`, nil, true},
		{"StringEqualsIfExists present mismatch", `{"StringEqualsIfExists":{"k":"v"}}`, ctxMap{"k": {"w"}}, false},
		{"NumericLessThanIfExists present", `{"NumericLessThanIfExists":{"n":"5"}}`, ctxMap{"n": {"4"}}, true},
		{"ArnLikeIfExists absent", `{"ArnLikeIfExists":{"a":"arn:aws:iam::*:role/x"}}`, nil, true},
		// Set operators.
		{"ForAllValues all in set", `{"ForAllValues:StringEquals":{"t":["a","b","c"]}}`, ctxMap{"t": {"a", "c"}}, true},
		{"ForAllValues one outside set", `{"ForAllValues:StringEquals":{"t":["a","b"]}}`, ctxMap{"t": {"a", "z"}}, false},
		{"ForAllValues pitfall: missing key is true", `{"ForAllValues:StringEquals":{"t":"a"}}`, nil, true},
		{"ForAllValues pitfall: empty key is true", `{"ForAllValues:StringEquals":{"t":"a"}}`, ctxMap{"t": {}}, true},
		{"ForAnyValue one in set", `{"ForAnyValue:StringEquals":{"t":["a","b"]}}`, ctxMap{"t": {"z", "b"}}, true},
		{"ForAnyValue none in set", `{"ForAnyValue:StringEquals":{"t":["a","b"]}}`, ctxMap{"t": {"z"}}, false},
		{"ForAnyValue missing key is false", `{"ForAnyValue:StringEquals":{"t":"a"}}`, nil, false},
		{"ForAnyValue negated missing key is false", `{"ForAnyValue:StringNotEquals":{"t":"a"}}`, nil, false},
		{"ForAllValues StringLike", `{"ForAllValues:StringLike":{"t":"team-*"}}`, ctxMap{"t": {"team-a", "team-b"}}, true},
		{"ForAllValues StringNotEquals", `{"ForAllValues:StringNotEquals":{"t":["secret"]}}`, ctxMap{"t": {"a", "b"}}, true},
		{"ForAllValues StringNotEquals one forbidden", `{"ForAllValues:StringNotEquals":{"t":["secret"]}}`, ctxMap{"t": {"a", "secret"}}, false},
		{"ForAnyValue StringNotEquals one allowed", `{"ForAnyValue:StringNotEquals":{"t":["secret"]}}`, ctxMap{"t": {"a", "secret"}}, true},
		{"ForAnyValue IfExists missing key", `{"ForAnyValue:StringEqualsIfExists":{"t":"a"}}`, nil, true},
		{"multi-valued key without prefix matches any value", `{"StringEquals":{"t":"b"}}`, ctxMap{"t": {"a", "b"}}, true},
		{"multi-valued key negated without prefix needs none", `{"StringNotEquals":{"t":"b"}}`, ctxMap{"t": {"a", "b"}}, false},
		// Combination rules.
		{"different keys are ANDed", `{"StringEquals":{"a":"1","b":"2"}}`, ctxMap{"a": {"1"}, "b": {"3"}}, false},
		{"different keys all true", `{"StringEquals":{"a":"1","b":"2"}}`, ctxMap{"a": {"1"}, "b": {"2"}}, true},
		{"different operators are ANDed", `{"StringEquals":{"a":"1"},"StringLike":{"b":"x*"}}`, ctxMap{"a": {"1"}, "b": {"y"}}, false},
		{"different operators all true", `{"StringEquals":{"a":"1"},"StringLike":{"b":"x*"}}`, ctxMap{"a": {"1"}, "b": {"xy"}}, true},
		{"condition key is case-insensitive", `{"StringEquals":{"AWS:UserName":"alice"}}`, ctxMap{"aws:username": {"alice"}}, true},
		{"context key is case-insensitive", `{"StringEquals":{"aws:username":"alice"}}`, ctxMap{"AWS:USERNAME": {"alice"}}, true},
		// Policy variables in condition values.
		{"variable in StringEquals", `{"StringEquals":{"sts:RoleSessionName":"${aws:username}"}}`,
			ctxMap{"sts:RoleSessionName": {"alice"}, "aws:username": {"alice"}}, true},
		{"variable in StringLike keeps wildcards of the template", `{"StringLike":{"sts:RoleSessionName":"${aws:username}-*"}}`,
			ctxMap{"sts:RoleSessionName": {"alice-laptop"}, "aws:username": {"alice"}}, true},
		{"variable key is case-insensitive", `{"StringEquals":{"k":"${AWS:UserName}"}}`, ctxMap{"k": {"alice"}, "aws:username": {"alice"}}, true},
		{"unresolvable variable does not match", `{"StringEquals":{"k":"${aws:username}"}}`, ctxMap{"k": {""}}, false},
		{"unresolvable variable with other value ORed", `{"StringEquals":{"k":["${aws:username}","x"]}}`, ctxMap{"k": {"x"}}, true},
		// IAM User Guide, reference_policies_variables.html#policy-vars-no-value:
		// "Inverted condition operators like StringNotEquals or StringNotLike
		// do match against a null value".
		{"unresolvable variable makes a negated operator true", `{"StringNotEquals":{"k":"${aws:username}"}}`, ctxMap{"k": {"x"}}, true},
		{"multi-valued variable is unresolvable", `{"StringEquals":{"k":"${t}"}}`, ctxMap{"k": {"a"}, "t": {"a", "b"}}, false},
		{"variable default", `{"StringEquals":{"k":"${aws:username, 'nobody'}"}}`, ctxMap{"k": {"nobody"}}, true},
		{"variable in ArnLike", `{"ArnLike":{"a":"arn:aws:iam::${aws:PrincipalAccount}:role/*"}}`,
			ctxMap{"a": {roleARN}, "aws:PrincipalAccount": {acct}}, true},
		{"dollar before a variable is literal", `{"StringEquals":{"k":"$${x}"}}`, ctxMap{"k": {"$v"}, "x": {"v"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := condHolds(t, tt.cond, tt.ctx); got != tt.want {
				t.Errorf("condition %s with context %v = %v, want %v", tt.cond, tt.ctx, got, tt.want)
			}
		})
	}
}

// TestAssumeRoleConditionKeys exercises the condition keys the emulator
// populates for AssumeRole*, in the shapes real trust policies use them.
func TestAssumeRoleConditionKeys(t *testing.T) {
	base := func(extra ctxMap) ctxMap {
		m := ctxMap{
			"aws:PrincipalArn":                        {roleARN},
			"aws:PrincipalAccount":                    {acct},
			"aws:PrincipalTag/team":                   {"platform"},
			"aws:SourceIp":                            {"10.20.30.40"},
			"aws:CurrentTime":                         {"2024-05-01T12:00:00Z"},
			"aws:EpochTime":                           {"1714564800"},
			"aws:SecureTransport":                     {"true"},
			"sts:RoleSessionName":                     {"platform-build"},
			"sts:ExternalId":                          {"ext-123"},
			"sts:SourceIdentity":                      {"alice@example.com"},
			"sts:TagKeys":                             {"Project", "CostCenter"},
			"aws:RequestTag/Project":                  {"apollo"},
			"aws:RequestTag/CostCenter":               {"42"},
			"sts:DurationSeconds":                     {"3600"},
			"token.actions.githubusercontent.com:sub": {"repo:org/app:ref:refs/heads/main"},
		}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
				continue
			}
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name string
		cond string
		ctx  ctxMap
		want bool
	}{
		{"sts:ExternalId matches", `{"StringEquals":{"sts:ExternalId":"ext-123"}}`, base(nil), true},
		{"sts:ExternalId wrong", `{"StringEquals":{"sts:ExternalId":"ext-123"}}`, base(ctxMap{"sts:ExternalId": {"guess"}}), false},
		{"sts:ExternalId absent", `{"StringEquals":{"sts:ExternalId":"ext-123"}}`, base(ctxMap{"sts:ExternalId": nil}), false},
		{"sts:RoleSessionName from principal tag", `{"StringLike":{"sts:RoleSessionName":"${aws:PrincipalTag/team}-*"}}`, base(nil), true},
		{"sts:RoleSessionName from principal tag mismatch", `{"StringLike":{"sts:RoleSessionName":"${aws:PrincipalTag/team}-*"}}`, base(ctxMap{"aws:PrincipalTag/team": {"data"}}), false},
		{"sts:RoleSessionName without the tag", `{"StringLike":{"sts:RoleSessionName":"${aws:PrincipalTag/team}-*"}}`, base(ctxMap{"aws:PrincipalTag/team": nil}), false},
		{"sts:SourceIdentity required", `{"StringLike":{"sts:SourceIdentity":"*@example.com"}}`, base(nil), true},
		{"sts:SourceIdentity absent", `{"StringLike":{"sts:SourceIdentity":"*@example.com"}}`, base(ctxMap{"sts:SourceIdentity": nil}), false},
		{"sts:TagKeys only allowed keys", `{"ForAllValues:StringEquals":{"sts:TagKeys":["Project","CostCenter","Owner"]}}`, base(nil), true},
		{"sts:TagKeys a disallowed key", `{"ForAllValues:StringEquals":{"sts:TagKeys":["Project"]}}`, base(nil), false},
		{"sts:TagKeys pitfall: no tags passes ForAllValues", `{"ForAllValues:StringEquals":{"sts:TagKeys":["Project"]}}`, base(ctxMap{"sts:TagKeys": nil}), true},
		{"sts:TagKeys must include Project", `{"ForAnyValue:StringEquals":{"sts:TagKeys":"Project"}}`, base(nil), true},
		{"sts:TagKeys no tags fails ForAnyValue", `{"ForAnyValue:StringEquals":{"sts:TagKeys":"Project"}}`, base(ctxMap{"sts:TagKeys": nil}), false},
		{"aws:RequestTag value", `{"StringEquals":{"aws:RequestTag/Project":["apollo","gemini"]}}`, base(nil), true},
		{"aws:RequestTag matches principal tag variable", `{"StringEquals":{"aws:RequestTag/team":"${aws:PrincipalTag/team}"}}`, base(ctxMap{"aws:RequestTag/team": {"platform"}}), true},
		{"aws:RequestTag numeric", `{"NumericLessThan":{"aws:RequestTag/CostCenter":"100"}}`, base(nil), true},
		{"aws:PrincipalArn ArnLike", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/team/*"}}`, base(nil), true},
		{"aws:PrincipalArn ArnLike other account", `{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::444455556666:role/*"}}`, base(nil), false},
		{"aws:PrincipalTag equals", `{"StringEquals":{"aws:PrincipalTag/team":"platform"}}`, base(nil), true},
		{"aws:PrincipalTag absent", `{"StringEquals":{"aws:PrincipalTag/team":"platform"}}`, base(ctxMap{"aws:PrincipalTag/team": nil}), false},
		{"aws:SourceIp inside", `{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]}}`, base(nil), true},
		{"aws:SourceIp deny outside", `{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, base(nil), false},
		{"aws:SourceIp absent for service calls", `{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, base(ctxMap{"aws:SourceIp": nil}), true},
		{"aws:CurrentTime before expiry", `{"DateLessThan":{"aws:CurrentTime":"2024-12-31T23:59:59Z"}}`, base(nil), true},
		{"aws:CurrentTime window", `{"DateGreaterThan":{"aws:CurrentTime":"2024-06-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2024-12-31T23:59:59Z"}}`, base(nil), false},
		{"aws:EpochTime", `{"DateGreaterThanEquals":{"aws:EpochTime":"1714564800"}}`, base(nil), true},
		{"aws:MultiFactorAuthPresent absent with BoolIfExists", `{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}`, base(nil), true},
		{"aws:MultiFactorAuthPresent pitfall: absent with Bool", `{"Bool":{"aws:MultiFactorAuthPresent":"false"}}`, base(nil), false},
		{"aws:MultiFactorAuthPresent true", `{"Bool":{"aws:MultiFactorAuthPresent":"true"}}`, base(ctxMap{"aws:MultiFactorAuthPresent": {"true"}}), true},
		{"aws:SecureTransport", `{"Bool":{"aws:SecureTransport":true}}`, base(nil), true},
		{"aws:SecureTransport false", `{"Bool":{"aws:SecureTransport":"true"}}`, base(ctxMap{"aws:SecureTransport": {"false"}}), false},
		{"sts:DurationSeconds", `{"NumericLessThanEquals":{"sts:DurationSeconds":3600}}`, base(nil), true},
		{"web identity sub", `{"StringLike":{"token.actions.githubusercontent.com:sub":"repo:org/app:ref:refs/heads/*"}}`, base(nil), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := condHolds(t, tt.cond, tt.ctx); got != tt.want {
				t.Errorf("condition %s = %v, want %v", tt.cond, got, tt.want)
			}
		})
	}
}

func TestParseDate(t *testing.T) {
	for _, s := range []string{
		"2024-01-01T00:00:00Z", "2024-01-01T00:00:00.5Z", "2024-01-01T02:00:00+02:00",
		"2024-01-01T00:00Z", "2024-01-01T00:00:00", "2024-01-01T00:00", "2024-01-01",
		"1704067200", "1704067200.000",
	} {
		got, err := parseDate(s)
		if err != nil {
			t.Errorf("parseDate(%q): %v", s, err)
			continue
		}
		if got.Unix() != 1704067200 {
			t.Errorf("parseDate(%q) = %v, want 2024-01-01T00:00:00Z", s, got)
		}
	}
	for _, s := range []string{"", "yesterday", "2024-13-01", "1.2.3", "99999999999999999999", "20240101T000000Z", "."} {
		if _, err := parseDate(s); err == nil {
			t.Errorf("parseDate(%q) succeeded, want error", s)
		}
	}
}

func TestConditionValuesKeepText(t *testing.T) {
	p := mustParse(t, doc(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericEquals":{"n":[1e3,10]},"Bool":{"b":false}}}`))
	var got []string
	for _, c := range p.Statements[0].Conditions {
		got = append(got, c.Operator+"="+strings.Join(c.Values, ","))
	}
	want := "Bool=false;NumericEquals=1e3,10"
	if strings.Join(got, ";") != want {
		t.Errorf("conditions = %q, want %q", strings.Join(got, ";"), want)
	}
}
