package iampolicy

import (
	"testing"
)

const (
	acct      = "111122223333"
	otherAcct = "444455556666"
	roleARN   = "arn:aws:iam::111122223333:role/team/Deployer"
	userARN   = "arn:aws:iam::111122223333:user/alice"
	sessARN   = "arn:aws:sts::111122223333:assumed-role/Deployer/build-42"
	oidcARN   = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
)

var (
	alice    = Principal{Type: "AWS", ARN: userARN, Account: acct}
	session  = Principal{Type: "AWS", ARN: sessARN, Aliases: []string{roleARN}, Account: acct}
	outsider = Principal{Type: "AWS", ARN: "arn:aws:iam::444455556666:user/mallory", Account: otherAcct}
	oidc     = Principal{Type: "Federated", ARN: oidcARN, Aliases: []string{"token.actions.githubusercontent.com"}}
	ec2Svc   = Principal{Type: "Service", ARN: "ec2.amazonaws.com"}
	anon     = Principal{}
)

func mustParse(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse(%s): %v", doc, err)
	}
	return p
}

// doc wraps statements in a 2012-10-17 document.
func doc(statements string) string {
	return `{"Version":"2012-10-17","Statement":` + statements + `}`
}

func assume(p Principal) Request {
	return Request{Principal: p, Action: "sts:AssumeRole", Resource: roleARN}
}

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name     string
		policies []string
		req      Request
		want     Decision
		wantSid  string
		wantPM   PrincipalMatch
		wantPol  int
	}{
		// Decision precedence.
		{
			name: "explicit deny beats allow",
			policies: []string{doc(`[
				{"Sid":"A","Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"},
				{"Sid":"D","Effect":"Deny","Action":"sts:*","Resource":"*"}]`)},
			req: assume(alice), want: ExplicitDeny, wantSid: "D",
		},
		{
			name:     "allow when a statement matches",
			policies: []string{doc(`{"Sid":"A","Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}`)},
			req:      assume(alice), want: Allow, wantSid: "A",
		},
		{
			name:     "implicit deny when nothing matches",
			policies: []string{doc(`{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}`)},
			req:      assume(alice), want: ImplicitDeny, wantPol: -1,
		},
		{
			name:     "deny that does not match leaves the allow",
			policies: []string{doc(`[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:*","Resource":"*"}]`)},
			req:      assume(alice), want: Allow, wantSid: "A",
		},
		{
			name: "deny in a later policy wins across policies",
			policies: []string{
				doc(`{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"}`),
				doc(`{"Sid":"D","Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"}`),
			},
			req: assume(alice), want: ExplicitDeny, wantSid: "D", wantPol: 1,
		},
		{
			name: "allow in any policy allows",
			policies: []string{
				doc(`{"Effect":"Allow","Action":"s3:*","Resource":"*"}`),
				doc(`{"Sid":"B","Effect":"Allow","Action":"sts:*","Resource":"*"}`),
			},
			req: assume(alice), want: Allow, wantSid: "B", wantPol: 1,
		},
		// Action.
		{
			name:     "action is case-insensitive",
			policies: []string{doc(`{"Effect":"Allow","Action":"STS:assumerole","Resource":"*"}`)},
			req:      assume(alice), want: Allow,
		},
		{
			name:     "action star wildcard",
			policies: []string{doc(`{"Effect":"Allow","Action":"sts:Assume*","Resource":"*"}`)},
			req:      assume(alice), want: Allow,
		},
		{
			name:     "action question mark matches one character",
			policies: []string{doc(`{"Effect":"Allow","Action":"sts:AssumeRol?","Resource":"*"}`)},
			req:      assume(alice), want: Allow,
		},
		{
			name:     "action question mark does not match zero characters",
			policies: []string{doc(`{"Effect":"Allow","Action":"sts:AssumeRole?","Resource":"*"}`)},
			req:      assume(alice), want: ImplicitDeny, wantPol: -1,
		},
		{
			name:     "action list is ORed",
			policies: []string{doc(`{"Effect":"Allow","Action":["s3:GetObject","sts:AssumeRole"],"Resource":"*"}`)},
			req:      assume(alice), want: Allow,
		},
		{
			name:     "NotAction allows everything else",
			policies: []string{doc(`{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}`)},
			req:      assume(alice), want: Allow,
		},
		{
			name:     "NotAction excludes the named action",
			policies: []string{doc(`{"Effect":"Allow","NotAction":"sts:AssumeRole","Resource":"*"}`)},
			req:      assume(alice), want: ImplicitDeny, wantPol: -1,
		},
		{
			name: "NotAction deny does not deny the named action",
			policies: []string{doc(`[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},
				{"Effect":"Deny","NotAction":"sts:*","Resource":"*"}]`)},
			req: assume(alice), want: Allow, wantSid: "A",
		},
		// Resource.
		{
			name:     "resource exact",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","Resource":"` + roleARN + `"}`)},
			req:      assume(alice), want: Allow,
		},
		{
			name:     "resource is case-sensitive",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::111122223333:role/team/deployer"}`)},
			req:      assume(alice), want: ImplicitDeny, wantPol: -1,
		},
		{
			name:     "resource wildcard",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::*:role/team/*"}`)},
			req:      assume(alice), want: Allow,
		},
		{
			name:     "resource wildcard does not cross an ARN component",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::*:role/x"}`)},
			req:      Request{Principal: alice, Action: "sts:AssumeRole", Resource: "arn:aws:iam::1:2:role/x"},
			want:     ImplicitDeny, wantPol: -1,
		},
		{
			name:     "NotResource",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","NotResource":"arn:aws:iam::*:role/admin/*"}`)},
			req:      assume(alice), want: Allow,
		},
		{
			name:     "NotResource excludes the named resource",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","NotResource":"arn:aws:iam::*:role/team/*"}`)},
			req:      assume(alice), want: ImplicitDeny, wantPol: -1,
		},
		{
			name:     "trust statement without Resource matches any resource",
			policies: []string{doc(`{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}`)},
			req:      Request{Principal: alice, Action: "sts:AssumeRole"}, want: Allow, wantPM: PrincipalWildcard,
		},
		{
			name:     "resource with policy variable",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::111122223333:user/${aws:username}"}`)},
			req: Request{Principal: alice, Action: "iam:GetUser", Resource: userARN,
				Context: map[string][]string{"aws:username": {"alice"}}},
			want: Allow,
		},
		{
			name:     "resource with unresolvable policy variable matches nothing",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::111122223333:user/${aws:username}"}`)},
			req:      Request{Principal: alice, Action: "iam:GetUser", Resource: userARN},
			want:     ImplicitDeny, wantPol: -1,
		},
		{
			name:     "resource variable default value",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::111122223333:user/${aws:username, 'alice'}"}`)},
			req:      Request{Principal: alice, Action: "iam:GetUser", Resource: userARN},
			want:     Allow,
		},
		{
			name:     "substituted variable value is literal, not a wildcard",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::bucket/${aws:PrincipalTag/dir}"}`)},
			req: Request{Principal: alice, Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket/secret",
				Context: map[string][]string{"aws:PrincipalTag/dir": {"*"}}},
			want: ImplicitDeny, wantPol: -1,
		},
		{
			name:     "escape ${*} is a literal star",
			policies: []string{doc(`{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::bucket/${*}"}`)},
			req:      Request{Principal: alice, Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket/x"},
			want:     ImplicitDeny, wantPol: -1,
		},
		{
			name:     "variables are literal text in Version 2008-10-17",
			policies: []string{`{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:iam::111122223333:user/${aws:username}"}}`},
			req: Request{Principal: alice, Action: "iam:GetUser", Resource: "arn:aws:iam::111122223333:user/${aws:username}",
				Context: map[string][]string{"aws:username": {"alice"}}},
			want: Allow,
		},
		// Principal.
		{
			name:     `principal "*" matches anyone`,
			policies: []string{doc(`{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}`)},
			req:      assume(anon), want: Allow, wantPM: PrincipalWildcard,
		},
		{
			name:     `principal {"AWS":"*"} matches any AWS principal`,
			policies: []string{doc(`{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}`)},
			req:      assume(outsider), want: Allow, wantPM: PrincipalWildcard,
		},
		{
			name:     `principal {"AWS":"*"} does not match a federated principal`,
			policies: []string{doc(`{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRoleWithWebIdentity"}`)},
			req:      Request{Principal: oidc, Action: "sts:AssumeRoleWithWebIdentity", Resource: roleARN},
			want:     ImplicitDeny, wantPol: -1,
		},
		{
			name:     "principal account id",
			policies: []string{doc(`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}`)},
			req:      assume(alice), want: Allow, wantPM: PrincipalAccount,
		},
		{
			name:     "principal account root ARN",
			policies: []string{doc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}`)},
			req:      assume(session), want: Allow, wantPM: PrincipalAccount,
		},
		{
			name:     "principal account does not match another account",
			policies: []string{doc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}`)},
			req:      assume(outsider), want: ImplicitDeny, wantPol: -1,
		},
		{
			name:     "principal user ARN is direct",
			policies: []string{doc(`{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444455556666:root","` + userARN + `"]},"Action":"sts:AssumeRole"}`)},
			req:      assume(alice), want: Allow, wantPM: PrincipalDirect,
		},
		{
			name:     "principal role ARN matches its session through the alias",
			policies: []string{doc(`{"Effect":"Allow","Principal":{"AWS":"` + roleARN + `"},"Action":"sts:AssumeRole"}`)},
			req:      assume(session), want: Allow, wantPM: PrincipalDirect,
		},
		{
			name:     "principal assumed-role session ARN",
			policies: []string{doc(`{"Effect":"Allow","Principal":{"AWS":"` + sessARN + `"},"Action":"sts:AssumeRole"}`)},
			req:      assume(session), want: Allow, wantPM: PrincipalDirect,
		},
		{
			name:     "principal other user does not match",
			policies: []string{doc(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"sts:AssumeRole"}`)},
			req:      assume(alice), want: ImplicitDeny, wantPol: -1,
		},
		{
			name:     "principal service",
			policies: []string{doc(`{"Effect":"Allow","Principal":{"Service":["lambda.amazonaws.com","ec2.amazonaws.com"]},"Action":"sts:AssumeRole"}`)},
			req:      assume(ec2Svc), want: Allow, wantPM: PrincipalDirect,
		},
		{
			name:     "principal service does not match an AWS principal of the same name",
			policies: []string{doc(`{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}`)},
			req:      assume(Principal{Type: "AWS", ARN: "ec2.amazonaws.com"}), want: ImplicitDeny, wantPol: -1,
		},
		{
			name:     "principal federated OIDC provider",
			policies: []string{doc(`{"Effect":"Allow","Principal":{"Federated":"` + oidcARN + `"},"Action":"sts:AssumeRoleWithWebIdentity"}`)},
			req:      Request{Principal: oidc, Action: "sts:AssumeRoleWithWebIdentity", Resource: roleARN},
			want:     Allow, wantPM: PrincipalDirect,
		},
		{
			name: "strongest principal match wins among allows",
			policies: []string{doc(`[
				{"Sid":"Wild","Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
				{"Sid":"Acct","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"},
				{"Sid":"Direct","Effect":"Allow","Principal":{"AWS":"` + userARN + `"},"Action":"sts:AssumeRole"},
				{"Sid":"Acct2","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]`)},
			req: assume(alice), want: Allow, wantSid: "Direct", wantPM: PrincipalDirect,
		},
		{
			name: "strongest principal match across policies",
			policies: []string{
				doc(`{"Sid":"Acct","Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}`),
				doc(`{"Sid":"Direct","Effect":"Allow","Principal":{"AWS":"` + userARN + `"},"Action":"sts:AssumeRole"}`),
			},
			req: assume(alice), want: Allow, wantSid: "Direct", wantPM: PrincipalDirect, wantPol: 1,
		},
		// What AWS recommends instead of NotPrincipal (IAM User Guide,
		// reference_policies_elements_notprincipal.html): a Deny whose
		// condition names the exempted principals by aws:PrincipalArn.
		{
			name: "Deny with ArnNotEquals on aws:PrincipalArn denies everyone not named",
			policies: []string{doc(`[
				{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
				{"Sid":"D","Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{"ArnNotEquals":{"aws:PrincipalArn":"` + userARN + `"}}}]`)},
			req:  Request{Principal: outsider, Action: "sts:AssumeRole", Context: map[string][]string{"aws:PrincipalArn": {outsider.ARN}}},
			want: ExplicitDeny, wantSid: "D", wantPM: PrincipalWildcard,
		},
		{
			name: "Deny with ArnNotEquals on aws:PrincipalArn spares the principal named",
			policies: []string{doc(`[
				{"Sid":"A","Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
				{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{"ArnNotEquals":{"aws:PrincipalArn":"` + userARN + `"}}}]`)},
			req:  Request{Principal: alice, Action: "sts:AssumeRole", Context: map[string][]string{"aws:PrincipalArn": {userARN}}},
			want: Allow, wantSid: "A", wantPM: PrincipalWildcard,
		},
		{
			name: "Deny with ArnNotEquals on aws:PrincipalArn denies a caller without the key",
			policies: []string{doc(`[
				{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"},
				{"Sid":"D","Effect":"Deny","Principal":"*","Action":"sts:AssumeRole","Condition":{"ArnNotEquals":{"aws:PrincipalArn":"` + userARN + `"}}}]`)},
			req:  assume(anon),
			want: ExplicitDeny, wantSid: "D", wantPM: PrincipalWildcard,
		},
		// Identity policies have no principal element.
		{
			name:     "identity policy allow has no principal match",
			policies: []string{doc(`{"Sid":"A","Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + roleARN + `"}`)},
			req:      assume(alice), want: Allow, wantSid: "A", wantPM: PrincipalNone,
		},
		// Conditions gate statements.
		{
			name: "deny with a false condition does not apply",
			policies: []string{doc(`[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},
				{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]`)},
			req: Request{Principal: alice, Action: "sts:AssumeRole", Resource: roleARN,
				Context: map[string][]string{"aws:SecureTransport": {"true"}}},
			want: Allow, wantSid: "A",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []*Policy
			for _, d := range tt.policies {
				ps = append(ps, mustParse(t, d))
			}
			got := Evaluate(ps, tt.req)
			if got.Decision != tt.want {
				t.Fatalf("Decision = %v, want %v", got.Decision, tt.want)
			}
			if got.Policy != tt.wantPol {
				t.Errorf("Policy = %d, want %d", got.Policy, tt.wantPol)
			}
			if got.PrincipalMatch != tt.wantPM {
				t.Errorf("PrincipalMatch = %v, want %v", got.PrincipalMatch, tt.wantPM)
			}
			if tt.want == ImplicitDeny {
				if got.Statement != nil {
					t.Errorf("Statement = %+v, want nil", got.Statement)
				}
				return
			}
			if got.Statement == nil {
				t.Fatalf("Statement = nil")
			}
			if tt.wantSid != "" && got.Statement.Sid != tt.wantSid {
				t.Errorf("Statement.Sid = %q, want %q", got.Statement.Sid, tt.wantSid)
			}
			if got.Statement != &ps[got.Policy].Statements[got.Statement.Index] {
				t.Errorf("Statement does not point into policy %d at index %d", got.Policy, got.Statement.Index)
			}
		})
	}
}

func TestPolicyEvaluate(t *testing.T) {
	p := mustParse(t, doc(`{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}`))
	if got := p.Evaluate(assume(alice)); got.Decision != Allow || got.Policy != 0 {
		t.Errorf("Evaluate = %+v, want Allow from policy 0", got)
	}
	if got := Evaluate([]*Policy{nil, p}, assume(alice)); got.Decision != Allow || got.Policy != 1 {
		t.Errorf("Evaluate with a nil policy = %+v, want Allow from policy 1", got)
	}
	if got := Evaluate(nil, assume(alice)); got.Decision != ImplicitDeny || got.Policy != -1 {
		t.Errorf("Evaluate(nil) = %+v, want implicit deny", got)
	}
}

func TestStrings(t *testing.T) {
	for v, want := range map[Decision]string{ImplicitDeny: "implicitDeny", Allow: "allow", ExplicitDeny: "explicitDeny", 9: "Decision(9)"} {
		if got := v.String(); got != want {
			t.Errorf("Decision(%d).String() = %q, want %q", int(v), got, want)
		}
	}
	for v, want := range map[PrincipalMatch]string{PrincipalNone: "none", PrincipalWildcard: "wildcard", PrincipalAccount: "account", PrincipalDirect: "direct"} {
		if got := v.String(); got != want {
			t.Errorf("PrincipalMatch(%d).String() = %q, want %q", int(v), got, want)
		}
	}
	if got := KindTrust.String(); got != "trust" {
		t.Errorf("KindTrust.String() = %q", got)
	}
}

// TestEvaluateConcurrent checks (under -race) that a parsed policy can be
// shared between goroutines.
func TestEvaluateConcurrent(t *testing.T) {
	p := mustParse(t, doc(`{"Effect":"Allow","Principal":{"AWS":"`+roleARN+`"},"Action":"sts:*","Resource":"arn:aws:iam::*:role/${aws:PrincipalTag/team}/*",
		"Condition":{"StringLike":{"sts:RoleSessionName":"${aws:username}-*"}}}`))
	req := Request{Principal: session, Action: "sts:AssumeRole", Resource: roleARN,
		Context: map[string][]string{"aws:PrincipalTag/team": {"team"}, "aws:username": {"bob"}, "sts:RoleSessionName": {"bob-1"}}}
	done := make(chan Decision)
	for range 8 {
		go func() { done <- p.Evaluate(req).Decision }()
	}
	for range 8 {
		if d := <-done; d != Allow {
			t.Errorf("Decision = %v, want allow", d)
		}
	}
}
