package iampolicy

import (
	"errors"
	"testing"
)

func FuzzParseEvaluate(f *testing.F) {
	seeds := []string{
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"}}}}`,
		`{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":["sts:*","s3:Get?bject"],"Resource":"arn:aws:iam::*:role/${aws:username}"},{"Effect":"Deny","NotAction":"iam:*","NotResource":"*","Condition":{"ForAllValues:StringLike":{"sts:TagKeys":["a*","${*}"]},"NumericLessThanIfExists":{"n":5}}}]}`,
		`{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:sts::111122223333:assumed-role/R/S","arn:aws:iam::111122223333:root"]},"Action":"*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","::1"]},"DateLessThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"},"Bool":{"b":true},"Null":{"x":"false"},"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"},"BinaryEquals":{"k":"QQ=="}}}}`,
		`{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/issuer","Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"issuer:sub":"${aws:x, 'd'}-*"}}}]}`,
		`[[[[{}]]]]`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	requests := []Request{
		{
			Principal: Principal{Type: "AWS", ARN: "arn:aws:sts::111122223333:assumed-role/R/S", Aliases: []string{"arn:aws:iam::111122223333:role/R"}, Account: "111122223333"},
			Action:    "sts:AssumeRole",
			Resource:  "arn:aws:iam::111122223333:role/R",
			Context: map[string][]string{
				"sts:ExternalId": {"x"}, "aws:username": {"alice"}, "sts:TagKeys": {"a", "b"},
				"aws:SourceIp": {"10.1.1.1"}, "aws:CurrentTime": {"2023-06-01T00:00:00Z"}, "n": {"4"},
				"aws:PrincipalArn": {"arn:aws:iam::111122223333:role/R"}, "b": {"true"}, "k": {"QQ=="},
			},
		},
		{Principal: Principal{Type: "Federated", ARN: "arn:aws:iam::111122223333:oidc-provider/issuer"}, Action: "sts:AssumeRoleWithWebIdentity"},
		{Context: map[string][]string{"N": {"not a number"}, "aws:SourceIp": {"junk"}, "aws:CurrentTime": {"never"}}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			var me *MalformedError
			if !errors.As(err, &me) {
				t.Fatalf("Parse error %T is not *MalformedError: %v", err, err)
			}
			return
		}
		// Kind checks only add requirements on top of Parse.
		for _, k := range []Kind{KindIdentity, KindTrust} {
			if _, err := ParseKind(data, k); err != nil {
				var me *MalformedError
				if !errors.As(err, &me) {
					t.Fatalf("ParseKind error %T is not *MalformedError: %v", err, err)
				}
			}
		}
		for _, r := range requests {
			res := p.Evaluate(r)
			if (res.Decision == ImplicitDeny) != (res.Statement == nil) || (res.Policy == -1) != (res.Statement == nil) {
				t.Fatalf("inconsistent result %+v", res)
			}
			_ = Evaluate([]*Policy{p, nil, p}, r)
			// Explain must decide exactly as Evaluate does, and trace a
			// failure for every statement that does not apply.
			ex, traces := Explain([]*Policy{p}, r)
			if ex != res || len(traces) != len(p.Statements) {
				t.Fatalf("Explain = %+v with %d traces, Evaluate = %+v (%d statements)", ex, len(traces), res, len(p.Statements))
			}
			for _, tr := range traces {
				if tr.Matched != (tr.Failed == ElementNone) || (tr.Failed == ElementCondition) != (tr.Condition != nil) {
					t.Fatalf("inconsistent trace %+v", tr)
				}
			}
		}
	})
}
