package localsts

import (
	"testing"

	"github.com/credsidecar/credsidecar/iampolicy"
)

func TestSimulate(t *testing.T) {
	f := newFixture(t, nil)
	acct := f.issuer.Account()
	rc, _ := f.cfg.RoleByName("direct")
	for _, tc := range []struct {
		name, resource, action, session string
		arns                            []string
		want                            iampolicy.Decision
		sid                             string
	}{
		{name: "allowed, no session policy", action: "s3:GetObject", resource: "arn:aws:s3:::bucket/a", want: iampolicy.Allow, sid: "ReadBucket"},
		{name: "role's session policy narrows", action: "s3:GetObject", resource: "arn:aws:s3:::bucket/a", session: rc.SessionPolicy.JSON, want: iampolicy.ImplicitDeny},
		{name: "inside the session policy", action: "s3:GetObject", resource: "arn:aws:s3:::bucket/public/a", session: rc.SessionPolicy.JSON, want: iampolicy.Allow, sid: "ReadBucket"},
		{name: "explicit deny", action: "s3:GetObject", resource: "arn:aws:s3:::bucket/secret/a", want: iampolicy.ExplicitDeny, sid: "NoSecrets"},
		{name: "not granted", action: "s3:PutObject", resource: "arn:aws:s3:::bucket/a", want: iampolicy.ImplicitDeny},
		{name: "managed session policy", action: "s3:GetObject", resource: "arn:aws:s3:::bucket/a", arns: []string{"arn:aws:iam::123456789012:policy/ReadOnlyS3"}, want: iampolicy.Allow, sid: "ReadBucket"},
		{name: "managed session policy narrows", action: "sts:AssumeRole", resource: roleARN("x"), arns: []string{"arn:aws:iam::123456789012:policy/ReadOnlyS3"}, want: iampolicy.ImplicitDeny},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := acct.Simulate(SimulateInput{RoleARN: rc.ARN, SessionPolicy: tc.session, PolicyARNs: tc.arns, Action: tc.action, Resource: tc.resource})
			if err != nil {
				t.Fatal(err)
			}
			if res.Decision != tc.want {
				t.Fatalf("decision %s, want %s (decider %+v)", res.Decision, tc.want, res.Decider)
			}
			if tc.sid != "" && (res.Decider.Result.Statement == nil || res.Decider.Result.Statement.Sid != tc.sid) {
				t.Errorf("decided by %+v, want Sid %s", res.Decider, tc.sid)
			}
		})
	}
	if _, err := acct.Simulate(SimulateInput{RoleARN: rc.ARN, SessionPolicy: "{", Action: "s3:GetObject", Resource: "*"}); err == nil {
		t.Error("malformed session policy accepted")
	}
	if _, err := acct.Simulate(SimulateInput{RoleARN: roleARN("nope"), Action: "s3:GetObject", Resource: "*"}); err == nil {
		t.Error("unknown role accepted")
	}
}
