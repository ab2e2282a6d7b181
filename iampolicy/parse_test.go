package iampolicy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseShapes(t *testing.T) {
	p := mustParse(t, `{
		"Version": "2012-10-17",
		"Id": "trust-1",
		"Statement": [
			{"Sid": "One", "Effect": "Allow", "Principal": {"AWS": "111122223333", "Service": ["ec2.amazonaws.com"]},
			 "Action": "sts:AssumeRole"},
			{"Effect": "Deny", "Principal": "*", "NotAction": ["iam:*", "s3:*"], "NotResource": "arn:aws:s3:::b/*",
			 "Condition": {"StringEquals": {"k": ["a", "b"]}, "Bool": {"m": true}}}
		]}`)
	if p.Version != Version2012 || p.ID != "trust-1" || len(p.Statements) != 2 {
		t.Fatalf("policy = %+v", p)
	}
	s0, s1 := p.Statements[0], p.Statements[1]
	if s0.Sid != "One" || s0.Effect != EffectAllow || s0.Index != 0 || !reflect.DeepEqual(s0.Action, []string{"sts:AssumeRole"}) {
		t.Errorf("statement 0 = %+v", s0)
	}
	wantP := &PrincipalSet{ByType: map[string][]string{"AWS": {"111122223333"}, "Service": {"ec2.amazonaws.com"}}}
	if !reflect.DeepEqual(s0.Principal, wantP) || s0.Resource != nil {
		t.Errorf("statement 0 principal = %+v, resource = %v", s0.Principal, s0.Resource)
	}
	if s1.Effect != EffectDeny || s1.Index != 1 || !s1.Principal.Any || !reflect.DeepEqual(s1.NotAction, []string{"iam:*", "s3:*"}) ||
		!reflect.DeepEqual(s1.NotResource, []string{"arn:aws:s3:::b/*"}) || s1.Action != nil {
		t.Errorf("statement 1 = %+v", s1)
	}
	if len(s1.Conditions) != 2 || s1.Conditions[0].Operator != "Bool" || s1.Conditions[1].Key != "k" ||
		!reflect.DeepEqual(s1.Conditions[1].Values, []string{"a", "b"}) {
		t.Errorf("statement 1 conditions = %+v", s1.Conditions)
	}

	single := mustParse(t, `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`)
	if single.Version != "" || len(single.Statements) != 1 || single.Statements[0].Index != 0 {
		t.Errorf("single statement policy = %+v", single)
	}
	mustParse(t, `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
}

func TestParseKind(t *testing.T) {
	trust := doc(`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}`)
	identity := doc(`{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}`)
	tests := []struct {
		name     string
		doc      string
		kind     Kind
		wantPath string // "" means success
	}{
		{"trust policy as trust", trust, KindTrust, ""},
		{"identity policy as identity", identity, KindIdentity, ""},
		{"identity policy as trust needs a principal", identity, KindTrust, "Statement.Principal"},
		{"trust policy as identity has a principal", trust, KindIdentity, "Statement.Principal"},
		{"identity policy without resource", doc(`{"Effect":"Allow","Action":"*"}`), KindIdentity, "Statement.Resource"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Parse checks no kind, so it accepts every document here.
			if _, err := Parse([]byte(tt.doc)); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			_, err := ParseKind([]byte(tt.doc), tt.kind)
			checkMalformed(t, err, tt.wantPath, "")
		})
	}
	if _, err := ParseKind([]byte(identity), Kind(7)); err == nil {
		t.Errorf("ParseKind with an unknown kind succeeded")
	}
}

func TestParseErrors(t *testing.T) {
	stmt := func(s string) string { return doc(`[{"Effect":"Allow","Action":"*","Resource":"*"},` + s + `]`) }
	cond := func(c string) string {
		return stmt(`{"Effect":"Allow","Action":"*","Resource":"*","Condition":` + c + `}`)
	}
	tests := []struct {
		name     string
		doc      string
		wantPath string
		wantMsg  string
	}{
		{"not JSON", `{"Version":`, "", "invalid JSON"},
		{"trailing data", `{"Statement":{"Effect":"Allow","Action":"*"}} {}`, "", "unexpected data"},
		{"not an object", `[1]`, "", "must be a JSON object"},
		{"bad version", `{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*"}}`, "Version", "must be"},
		{"version not a string", `{"Version":2012,"Statement":{"Effect":"Allow","Action":"*"}}`, "Version", "must be"},
		{"unknown top-level element", `{"Statement":{"Effect":"Allow","Action":"*"},"Extra":1}`, "Extra", "unknown policy element"},
		{"missing Statement", `{"Version":"2012-10-17"}`, "Statement", "missing"},
		{"empty Statement list", `{"Statement":[]}`, "Statement", "empty"},
		{"Statement not an object", `{"Statement":"x"}`, "Statement", "object"},
		{"statement element not an object", doc(`[{"Effect":"Allow","Action":"*"}, 3]`), "Statement[1]", "object"},
		{"unknown statement element", stmt(`{"Effect":"Allow","Action":"*","Resources":"*"}`), "Statement[1].Resources", "unknown statement element"},
		{"missing Effect", stmt(`{"Action":"*","Resource":"*"}`), "Statement[1].Effect", "missing"},
		{"unknown Effect", stmt(`{"Effect":"Permit","Action":"*","Resource":"*"}`), "Statement[1].Effect", `"Permit"`},
		{"Effect is case-sensitive", stmt(`{"Effect":"allow","Action":"*","Resource":"*"}`), "Statement[1].Effect", "must be"},
		{"missing Action", stmt(`{"Effect":"Allow","Resource":"*"}`), "Statement[1].Action", "missing"},
		{"both Action and NotAction", stmt(`{"Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*"}`), "Statement[1]", "Action and NotAction"},
		{"both Resource and NotResource", stmt(`{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}`), "Statement[1]", "Resource and NotResource"},
		{"empty Action list", stmt(`{"Effect":"Allow","Action":[],"Resource":"*"}`), "Statement[1].Action", "empty"},
		{"Action not a string", stmt(`{"Effect":"Allow","Action":["sts:AssumeRole",5],"Resource":"*"}`), "Statement[1].Action[1]", "string"},
		{"Action without service", stmt(`{"Effect":"Allow","Action":"AssumeRole","Resource":"*"}`), "Statement[1].Action", "service prefix"},
		{"Resource not an ARN", stmt(`{"Effect":"Allow","Action":"*","Resource":"my-bucket"}`), "Statement[1].Resource", "ARN"},
		{"Sid not a string", stmt(`{"Sid":1,"Effect":"Allow","Action":"*","Resource":"*"}`), "Statement[1].Sid", "string"},
		{"duplicate Sid", doc(`[{"Sid":"A","Effect":"Allow","Action":"*"},{"Sid":"B","Effect":"Allow","Action":"*"},{"Sid":"A","Effect":"Deny","Action":"*"}]`), "Statement[2].Sid", `duplicate Sid "A" (also Statement[0])`},
		{"principal string other than star", stmt(`{"Effect":"Allow","Action":"*","Principal":"arn:aws:iam::111122223333:root"}`), "Statement[1].Principal", `"*"`},
		{"principal unknown type", stmt(`{"Effect":"Allow","Action":"*","Principal":{"User":"x"}}`), "Statement[1].Principal.User", "unknown principal type"},
		{"principal empty object", stmt(`{"Effect":"Allow","Action":"*","Principal":{}}`), "Statement[1].Principal", "at least one"},
		{"principal partial wildcard", stmt(`{"Effect":"Allow","Action":"*","Principal":{"AWS":"arn:aws:iam::*:role/x"}}`), "Statement[1].Principal.AWS", "wildcards are not allowed"},
		{"principal not an ARN", stmt(`{"Effect":"Allow","Action":"*","Principal":{"AWS":"alice"}}`), "Statement[1].Principal.AWS", "account ID"},
		{"principal star under Service", stmt(`{"Effect":"Allow","Action":"*","Principal":{"Service":"*"}}`), "Statement[1].Principal.Service", `"*"`},
		{"Condition not an object", cond(`"x"`), "Statement[1].Condition", "object"},
		{"unknown operator", cond(`{"StringEqual":{"k":"v"}}`), "Statement[1].Condition.StringEqual", "unknown condition operator"},
		{"unknown prefix", cond(`{"ForEachValue:StringEquals":{"k":"v"}}`), "Statement[1].Condition.ForEachValue:StringEquals", "unknown condition operator"},
		{"NullIfExists", cond(`{"NullIfExists":{"k":"true"}}`), "Statement[1].Condition.NullIfExists", "IfExists"},
		{"operator without keys", cond(`{"StringEquals":{}}`), "Statement[1].Condition.StringEquals", "condition keys"},
		{"operator value not an object", cond(`{"StringEquals":"k"}`), "Statement[1].Condition.StringEquals", "condition keys"},
		{"condition value null", cond(`{"StringEquals":{"k":null}}`), "Statement[1].Condition.StringEquals.k", "null"},
		{"condition value object", cond(`{"StringEquals":{"k":[{"a":1}]}}`), "Statement[1].Condition.StringEquals.k[0]", "an object"},
		{"bad number", cond(`{"NumericLessThan":{"n":"ten"}}`), "Statement[1].Condition.NumericLessThan.n", `invalid number "ten"`},
		{"NaN number", cond(`{"NumericLessThan":{"n":"NaN"}}`), "Statement[1].Condition.NumericLessThan.n", "invalid number"},
		{"variable in numeric value", cond(`{"NumericLessThan":{"n":"${aws:EpochTime}"}}`), "Statement[1].Condition.NumericLessThan.n", "invalid number"},
		{"bad date", cond(`{"DateLessThan":{"aws:CurrentTime":"next tuesday"}}`), "Statement[1].Condition.DateLessThan.aws:CurrentTime", "invalid date"},
		{"bad CIDR", cond(`{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`), "Statement[1].Condition.IpAddress.aws:SourceIp", "invalid CIDR"},
		{"bad address", cond(`{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","10.0.0.256"]}}`), "Statement[1].Condition.NotIpAddress.aws:SourceIp", "invalid IP address"},
		{"bad bool", cond(`{"Bool":{"aws:SecureTransport":"yes"}}`), "Statement[1].Condition.Bool.aws:SecureTransport", "invalid boolean"},
		{"bad Null value", cond(`{"Null":{"k":"maybe"}}`), "Statement[1].Condition.Null.k", "invalid boolean"},
		{"bad base64", cond(`{"BinaryEquals":{"k":"!!"}}`), "Statement[1].Condition.BinaryEquals.k", "base64"},
		{"too deep", strings.Repeat("[", 100) + strings.Repeat("]", 100), "", "nested"},
		{"too large", `{"Id":"` + strings.Repeat("x", MaxDocumentSize) + `","Statement":{"Effect":"Allow","Action":"*"}}`, "", "bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			checkMalformed(t, err, tt.wantPath, tt.wantMsg)
		})
	}
}

// checkMalformed checks that err is a *MalformedError at wantPath whose
// message contains wantMsg; wantPath "" with wantMsg "" means no error.
func checkMalformed(t *testing.T, err error, wantPath, wantMsg string) {
	t.Helper()
	if wantPath == "" && wantMsg == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var me *MalformedError
	if !errors.As(err, &me) {
		t.Fatalf("error = %v (%T), want *MalformedError", err, err)
	}
	if me.Path != wantPath {
		t.Errorf("Path = %q, want %q (error %q)", me.Path, wantPath, err)
	}
	if !strings.Contains(me.Msg, wantMsg) {
		t.Errorf("Msg = %q, want it to contain %q", me.Msg, wantMsg)
	}
	want := "MalformedPolicyDocument: "
	if wantPath != "" {
		want += wantPath + ": "
	}
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Error() = %q, want prefix %q", err.Error(), want)
	}
}

func TestParseDepthAllowsRealPolicies(t *testing.T) {
	// Brackets inside strings must not count towards the nesting limit.
	mustParse(t, doc(`{"Sid":"`+strings.Repeat("[{", 50)+`","Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForAnyValue:StringLike":{"k":["a\"[","b"]}}}`))
}
