package localsts

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestAccessDeniedMessages: AssumeRole refusals say what AWS's say —
// "User: <caller ARN> is not authorized to perform: <action> on resource:
// <role ARN>" (the form of reference C.4 and of the IAM User Guide's
// "Troubleshoot access denied error messages") — whatever policy refused,
// and the log line carries that message plus the reason behind it, without
// any secret.
func TestAccessDeniedMessages(t *testing.T) {
	f := newFixture(t, nil)
	core, logs := observer.New(zapcore.InfoLevel)
	srv, err := NewServer(ServerOptions{Issuer: f.issuer, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	client := func(key, secret string) *sts.Client {
		return sts.NewFromConfig(aws.Config{Region: testRegion, Credentials: static(key, secret, ""), BaseEndpoint: aws.String(hs.URL)})
	}
	alice, bob := client(aliceKey, aliceSecret), client(bobKey, bobSecret)
	const aliceARN, bobARN = "arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/bob"
	for _, tc := range []struct {
		name   string
		client *sts.Client
		caller string
		in     sts.AssumeRoleInput
		action string
		reason []string // substrings of the log line's reason
	}{
		{"trust does not name the caller", bob, bobARN, sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct"))}, "sts:AssumeRole",
			[]string{"trust policy: no statement allows sts:AssumeRole", "Statement[0]: its Principal does not name the caller"}},
		{"trust condition false", alice, aliceARN, sts.AssumeRoleInput{RoleArn: aws.String(roleARN("extid")), ExternalId: aws.String("guessed-43")}, "sts:AssumeRole",
			[]string{"trust policy: no statement allows sts:AssumeRole", "Statement[0]: condition StringEquals on sts:ExternalId is false"}},
		{"explicit deny in the trust policy", alice, aliceARN, sts.AssumeRoleInput{RoleArn: aws.String(roleARN("trustdeny"))}, "sts:AssumeRole",
			[]string{"trust policy: explicit deny of sts:AssumeRole by Statement[1]"}},
		{"explicit deny in the identity policy", alice, aliceARN, sts.AssumeRoleInput{RoleArn: aws.String(roleARN("denied"))}, "sts:AssumeRole",
			[]string{`identity policies: explicit deny of sts:AssumeRole by Statement[1] (Sid "NotThatOne")`}},
		{"account trust without an identity policy", bob, bobARN, sts.AssumeRoleInput{RoleArn: aws.String(roleARN("account"))}, "sts:AssumeRole",
			[]string{"identity policies: no statement allows sts:AssumeRole", "names the caller only by account"}},
		{"unknown role", alice, aliceARN, sts.AssumeRoleInput{RoleArn: aws.String(roleARN("nope"))}, "sts:AssumeRole",
			[]string{"the role is not in the emulated account"}},
		{"tags without sts:TagSession", alice, aliceARN, sts.AssumeRoleInput{RoleArn: aws.String(roleARN("notag")), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}, "sts:TagSession",
			[]string{"trust policy: no statement allows sts:TagSession", "Statement[0]: the action is not among its actions"}},
		{"source identity without sts:SetSourceIdentity", alice, aliceARN, sts.AssumeRoleInput{RoleArn: aws.String(roleARN("notag")), SourceIdentity: aws.String("alice")}, "sts:SetSourceIdentity",
			[]string{"trust policy: no statement allows sts:SetSourceIdentity"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs.TakeAll()
			in := tc.in
			in.RoleSessionName = aws.String("denial")
			_, err := tc.client.AssumeRole(context.Background(), &in)
			wantCode(t, err, "AccessDenied", 403)
			var ae smithy.APIError
			_ = errors.As(err, &ae)
			want := "User: " + tc.caller + " is not authorized to perform: " + tc.action + " on resource: " + aws.ToString(tc.in.RoleArn)
			if ae.ErrorMessage() != want {
				t.Errorf("message = %q, want %q", ae.ErrorMessage(), want)
			}
			entries := logs.FilterMessage("sts request refused").All()
			if len(entries) != 1 {
				t.Fatalf("got %d refusal log lines, want 1: %v", len(entries), logs.All())
			}
			fields := entries[0].ContextMap()
			if fields["message"] != want || fields["code"] != "AccessDenied" || fields["caller"] != tc.caller {
				t.Errorf("log fields = %v, want message %q", fields, want)
			}
			reason, _ := fields["reason"].(string)
			for _, r := range tc.reason {
				if !strings.Contains(reason, r) {
					t.Errorf("reason %q does not contain %q", reason, r)
				}
			}
			for _, secret := range []string{aliceSecret, bobSecret, "secret-42", "guessed-43"} {
				for k, v := range fields {
					if s, ok := v.(string); ok && strings.Contains(s, secret) {
						t.Errorf("log field %s carries %q", k, secret)
					}
				}
			}
		})
	}
}

// TestExplainAssumeRoleMatchesAssumeRole: the explanation is AssumeRole's
// own decision, so it refuses exactly what AssumeRole refuses, with the
// same error, and traces the statements it evaluated.
func TestExplainAssumeRoleMatchesAssumeRole(t *testing.T) {
	f := newFixture(t, nil)
	acct := f.issuer.Account()
	alice := UserPrincipal(acct, acct.Caller)
	for _, tc := range []struct {
		name string
		in   AssumeRoleInput
		ok   bool
	}{
		{"direct", AssumeRoleInput{RoleARN: roleARN("direct"), RoleSessionName: "sess"}, true},
		{"denied", AssumeRoleInput{RoleARN: roleARN("denied"), RoleSessionName: "sess"}, false},
		{"missing external id", AssumeRoleInput{RoleARN: roleARN("extid"), RoleSessionName: "sess"}, false},
		{"external id", AssumeRoleInput{RoleARN: roleARN("extid"), RoleSessionName: "sess", ExternalID: "secret-42", hasExternalID: true}, true},
		{"bad session name", AssumeRoleInput{RoleARN: roleARN("direct"), RoleSessionName: "bad name"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := f.issuer.ExplainAssumeRole(alice, tc.in)
			_, err := f.issuer.AssumeRole(context.Background(), alice, tc.in)
			if (d.Err == nil) != tc.ok || (err == nil) != tc.ok {
				t.Fatalf("explain err %v, AssumeRole err %v, want ok=%v", d.Err, err, tc.ok)
			}
			if !tc.ok {
				if err.Error() != d.Err.Error() {
					t.Errorf("AssumeRole says %q, explain %q", err, d.Err)
				}
				if d.Reason == "" {
					t.Error("no reason")
				}
				return
			}
			if d.Claims() == nil || d.Claims().RoleARN != tc.in.RoleARN {
				t.Errorf("claims = %+v", d.Claims())
			}
			if len(d.Steps) == 0 || d.Steps[0].Set != "trust policy" || len(d.Steps[0].Traces) == 0 {
				t.Errorf("steps = %+v, want the trust policy traced first", d.Steps)
			}
		})
	}
}
