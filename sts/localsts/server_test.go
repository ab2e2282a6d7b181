package localsts

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmw "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/internal/clock"
)

var bg = context.Background()

func assumedARN(role, session string) string {
	return fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", testAccount, role, session)
}

func TestSDKAssumeRoleAsUser(t *testing.T) {
	f := newFixture(t, nil)
	out, err := f.alice().AssumeRole(bg, &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN("direct")), RoleSessionName: aws.String("alice-s1"),
		DurationSeconds: aws.Int32(900), SourceIdentity: aws.String("alice@example.com"),
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("blue")}},
	})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	c := out.Credentials
	if !strings.HasPrefix(*c.AccessKeyId, "ASIA") || *c.SecretAccessKey == "" || *c.SessionToken == "" {
		t.Fatalf("credentials %+v", c)
	}
	if d := time.Until(*c.Expiration); d < 14*time.Minute || d > 15*time.Minute+time.Second {
		t.Errorf("expiration in %v, want 15m", d)
	}
	if got := *out.AssumedRoleUser.Arn; got != assumedARN("direct", "alice-s1") {
		t.Errorf("AssumedRoleUser.Arn %s", got)
	}
	if got := *out.AssumedRoleUser.AssumedRoleId; !strings.HasPrefix(got, "AROA") || !strings.HasSuffix(got, ":alice-s1") {
		t.Errorf("AssumedRoleId %s", got)
	}
	// PackedPolicySize is deprecated in the SDK but STS still sends it, and
	// so does the emulator: the check is of the wire, not a use of it.
	//lint:ignore SA1019 see above
	packed := out.PackedPolicySize
	if aws.ToString(out.SourceIdentity) != "alice@example.com" || packed == nil {
		t.Errorf("SourceIdentity %v PackedPolicySize %v", aws.ToString(out.SourceIdentity), packed)
	}
	if id, ok := awsmw.GetRequestIDMetadata(out.ResultMetadata); !ok || id == "" {
		t.Error("the SDK found no request id")
	}

	id, err := f.sessionClient(c).GetCallerIdentity(bg, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if *id.Arn != assumedARN("direct", "alice-s1") || *id.Account != testAccount || *id.UserId != *out.AssumedRoleUser.AssumedRoleId {
		t.Errorf("caller identity %s %s %s", *id.Arn, *id.Account, *id.UserId)
	}

	// The user itself.
	uid, err := f.alice().GetCallerIdentity(bg, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *uid.Arn != "arn:aws:iam::123456789012:user/alice" || !strings.HasPrefix(*uid.UserId, "AIDA") {
		t.Errorf("user identity %s %s", *uid.Arn, *uid.UserId)
	}
}

func TestSDKAccountTrustNeedsIdentityPolicy(t *testing.T) {
	f := newFixture(t, nil)
	in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("account")), RoleSessionName: aws.String("s")}
	in.RoleSessionName = aws.String("ok-session")
	if _, err := f.alice().AssumeRole(bg, in); err != nil {
		t.Fatalf("alice (identity policy allows): %v", err)
	}
	bob := f.client(static(bobKey, bobSecret, ""))
	_, err := bob.AssumeRole(bg, in)
	wantCode(t, err, "AccessDenied", 403)
	if !strings.Contains(err.Error(), "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/account") {
		t.Errorf("message: %v", err)
	}
}

func TestSDKChainedRole(t *testing.T) {
	f := newFixture(t, nil)
	first, err := f.alice().AssumeRole(bg, &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN("direct")), RoleSessionName: aws.String("hop1"),
		SourceIdentity: aws.String("alice"),
		Tags: []types.Tag{
			{Key: aws.String("team"), Value: aws.String("blue")},
			{Key: aws.String("temp"), Value: aws.String("x")},
		},
		TransitiveTagKeys: []string{"team"},
	})
	if err != nil {
		t.Fatalf("first hop: %v", err)
	}
	hop := f.sessionClient(first.Credentials)
	chained := roleARN("path/chained")

	_, err = hop.AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(chained), RoleSessionName: aws.String("hop2"), DurationSeconds: aws.Int32(7200)})
	wantCode(t, err, "ValidationError", 400)
	if !strings.Contains(err.Error(), "1 hour session limit") {
		t.Errorf("message: %v", err)
	}

	// A transitive tag cannot be overridden down the chain.
	_, err = hop.AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(chained), RoleSessionName: aws.String("hop2"),
		Tags: []types.Tag{{Key: aws.String("TEAM"), Value: aws.String("red")}}})
	wantCode(t, err, "InvalidParameterValue", 400)

	second, err := hop.AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(chained), RoleSessionName: aws.String("hop2"), DurationSeconds: aws.Int32(3600)})
	if err != nil {
		t.Fatalf("chained AssumeRole: %v", err)
	}
	if aws.ToString(second.SourceIdentity) != "alice" {
		t.Errorf("source identity did not carry over: %q", aws.ToString(second.SourceIdentity))
	}
	claims, _, err := f.issuer.Verify(*second.Credentials.AccessKeyId, *second.Credentials.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Tags["team"] != "blue" || claims.Tags["temp"] != "" || !claims.Chained || !contains(claims.Transitive, "team") {
		t.Errorf("chained claims: tags %v transitive %v chained %v", claims.Tags, claims.Transitive, claims.Chained)
	}
	id, err := f.sessionClient(second.Credentials).GetCallerIdentity(bg, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	// The role path is dropped from the assumed-role ARN.
	if *id.Arn != assumedARN("chained", "hop2") {
		t.Errorf("chained identity %s", *id.Arn)
	}

	// A chained session's source identity cannot change.
	_, err = hop.AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(chained), RoleSessionName: aws.String("hop2"), SourceIdentity: aws.String("mallory")})
	wantCode(t, err, "AccessDenied", 403)
}

func TestSDKSessionPolicyNarrowsChain(t *testing.T) {
	f := newFixture(t, nil)
	// The role's own permissions allow chaining into "account" (trusted
	// by account, so identity policies decide); a session policy that
	// allows only S3 takes that away.
	for _, tc := range []struct {
		name, policy string
		policyArns   []types.PolicyDescriptorType
		wantErr      bool
	}{
		{name: "no session policy"},
		{name: "s3 only", policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`, wantErr: true},
		{name: "managed s3 only", policyArns: []types.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::123456789012:policy/ReadOnlyS3")}}, wantErr: true},
		{name: "sts allowed", policy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:*","Resource":"*"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), RoleSessionName: aws.String("narrow"), PolicyArns: tc.policyArns}
			if tc.policy != "" {
				in.Policy = aws.String(tc.policy)
			}
			first, err := f.alice().AssumeRole(bg, in)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.sessionClient(first.Credentials).AssumeRole(bg, &sts.AssumeRoleInput{
				RoleArn: aws.String(roleARN("account")), RoleSessionName: aws.String("next")})
			if tc.wantErr {
				wantCode(t, err, "AccessDenied", 403)
			} else if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSessionPolicyAndTrustGrants: a trust policy naming the role ARN is
// limited by the calling session's session policy; one naming the session
// ARN itself is not (reference D.2).
func TestSessionPolicyAndTrustGrants(t *testing.T) {
	f := newFixture(t, nil)
	first, err := f.alice().AssumeRole(bg, &sts.AssumeRoleInput{
		RoleArn: aws.String(roleARN("direct")), RoleSessionName: aws.String("named"),
		Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	sess := f.sessionClient(first.Credentials)
	_, err = sess.AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("path/chained")), RoleSessionName: aws.String("next")})
	wantCode(t, err, "AccessDenied", 403)
	if _, err := sess.AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("sessiontrust")), RoleSessionName: aws.String("next")}); err != nil {
		t.Errorf("trust naming the session ARN: %v", err)
	}
}

func TestSDKGetSessionToken(t *testing.T) {
	f := newFixture(t, nil)
	out, err := f.alice().GetSessionToken(bg, &sts.GetSessionTokenInput{DurationSeconds: aws.Int32(3600)})
	if err != nil {
		t.Fatalf("GetSessionToken: %v", err)
	}
	sess := f.sessionClient(out.Credentials)
	id, err := sess.GetCallerIdentity(bg, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *id.Arn != "arn:aws:iam::123456789012:user/alice" || !strings.HasPrefix(*id.UserId, "AIDA") {
		t.Errorf("session-token identity %s %s", *id.Arn, *id.UserId)
	}
	// The session acts as alice: her policies let it assume "account".
	if _, err := sess.AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("account")), RoleSessionName: aws.String("from-gst")}); err != nil {
		t.Errorf("AssumeRole with GetSessionToken credentials: %v", err)
	}
	// Session credentials cannot call GetSessionToken.
	_, err = sess.GetSessionToken(bg, &sts.GetSessionTokenInput{})
	wantCode(t, err, "AccessDenied", 403)
	role, err := f.alice().AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), RoleSessionName: aws.String("rs")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.sessionClient(role.Credentials).GetSessionToken(bg, &sts.GetSessionTokenInput{})
	wantCode(t, err, "AccessDenied", 403)

	_, err = f.alice().GetSessionToken(bg, &sts.GetSessionTokenInput{DurationSeconds: aws.Int32(129601)})
	wantCode(t, err, "ValidationError", 400)
	_, err = f.alice().GetSessionToken(bg, &sts.GetSessionTokenInput{SerialNumber: aws.String("arn:aws:iam::123456789012:mfa/alice"), TokenCode: aws.String("123456")})
	wantCode(t, err, "AccessDenied", 403)
}

func TestSDKDenials(t *testing.T) {
	f := newFixture(t, nil)
	bob := f.client(static(bobKey, bobSecret, ""))
	for _, tc := range []struct {
		name   string
		client *sts.Client
		in     sts.AssumeRoleInput
		code   string
		status int
	}{
		{"trust does not name caller", bob, sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct"))}, "AccessDenied", 403},
		{"unknown role", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("nope"))}, "AccessDenied", 403},
		{"missing external id", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("extid"))}, "AccessDenied", 403},
		{"wrong external id", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("extid")), ExternalId: aws.String("secret-43")}, "AccessDenied", 403},
		{"explicit deny in identity policy", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("denied"))}, "AccessDenied", 403},
		{"explicit deny in trust policy", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("trustdeny"))}, "AccessDenied", 403},
		{"tags without sts:TagSession", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("notag")), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}, "AccessDenied", 403},
		{"source identity without sts:SetSourceIdentity", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("notag")), SourceIdentity: aws.String("alice")}, "AccessDenied", 403},
		{"malformed policy", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}`)}, "MalformedPolicyDocument", 400},
		{"policy not JSON", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), Policy: aws.String(`{nope`)}, "MalformedPolicyDocument", 400},
		{"policy with a principal", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}`)}, "MalformedPolicyDocument", 400},
		{"policy too long", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), Policy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Sid":"` + strings.Repeat("a", 2048) + `"}]}`)}, "ValidationError", 400},
		{"unknown managed policy", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), PolicyArns: []types.PolicyDescriptorType{{Arn: aws.String("arn:aws:iam::123456789012:policy/Nope")}}}, "InvalidParameterValue", 400},
		{"too many policy arns", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), PolicyArns: manyPolicyARNs(11)}, "ValidationError", 400},
		{"bad session name", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), RoleSessionName: aws.String("bad name!")}, "ValidationError", 400},
		{"session name too short", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), RoleSessionName: aws.String("a")}, "ValidationError", 400},
		{"duration too short", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), DurationSeconds: aws.Int32(899)}, "ValidationError", 400},
		{"duration too long", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), DurationSeconds: aws.Int32(43201)}, "ValidationError", 400},
		{"external id too short", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("extid")), ExternalId: aws.String("x")}, "ValidationError", 400},
		{"source identity aws: prefix", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), SourceIdentity: aws.String("aws:me")}, "ValidationError", 400},
		{"bad tag key", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), Tags: []types.Tag{{Key: aws.String("bad!key"), Value: aws.String("v")}}}, "ValidationError", 400},
		{"duplicate tag keys", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("1")}, {Key: aws.String("K"), Value: aws.String("2")}}}, "InvalidParameterValue", 400},
		{"too many tags", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), Tags: manyTags(51)}, "ValidationError", 400},
		{"transitive key not a tag", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), Tags: manyTags(1), TransitiveTagKeys: []string{"other"}}, "InvalidParameterValue", 400},
		{"mfa without device", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), SerialNumber: aws.String("arn:aws:iam::123456789012:mfa/alice"), TokenCode: aws.String("123456")}, "AccessDenied", 403},
		{"bad token code", f.alice(), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), SerialNumber: aws.String("arn:aws:iam::123456789012:mfa/alice"), TokenCode: aws.String("12345x")}, "ValidationError", 400},
		{"unknown access key", f.client(static("AKIAUNKNOWNUNKNOWN22", "secret", "")), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct"))}, "InvalidClientTokenId", 403},
		{"wrong secret", f.client(static(aliceKey, "not-the-secret", "")), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct"))}, "SignatureDoesNotMatch", 403},
		{"forged session token", f.client(static("ASIAFORGEDFORGEDFORG", "secret", "e30.AAAA")), sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct"))}, "InvalidClientTokenId", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if in.RoleSessionName == nil {
				in.RoleSessionName = aws.String("denial")
			}
			_, err := tc.client.AssumeRole(bg, &in)
			wantCode(t, err, tc.code, tc.status)
		})
	}
	// And the right external id works.
	if _, err := f.alice().AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("extid")), RoleSessionName: aws.String("ok"), ExternalId: aws.String("secret-42")}); err != nil {
		t.Errorf("right external id: %v", err)
	}
}

func manyPolicyARNs(n int) []types.PolicyDescriptorType {
	out := make([]types.PolicyDescriptorType, n)
	for i := range out {
		out[i].Arn = aws.String("arn:aws:iam::123456789012:policy/ReadOnlyS3")
	}
	return out
}

func manyTags(n int) []types.Tag {
	out := make([]types.Tag, n)
	for i := range out {
		out[i] = types.Tag{Key: aws.String(fmt.Sprintf("k%d", i)), Value: aws.String("v")}
	}
	return out
}

func TestSDKExpiredToken(t *testing.T) {
	fake := clock.NewFake(time.Now())
	f := newFixture(t, fake)
	out, err := f.alice().AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), RoleSessionName: aws.String("short"), DurationSeconds: aws.Int32(900)})
	if err != nil {
		t.Fatal(err)
	}
	sess := f.sessionClient(out.Credentials)
	if _, err := sess.GetCallerIdentity(bg, &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	fake.Advance(15 * time.Minute)
	_, err = sess.GetCallerIdentity(bg, &sts.GetCallerIdentityInput{})
	wantCode(t, err, "ExpiredToken", 403)
}

func TestSDKWebIdentity(t *testing.T) {
	f := newFixture(t, nil)
	anon := f.client(aws.AnonymousCredentials{})
	now := time.Now()
	call := func(claims map[string]any, mutate func(*sts.AssumeRoleWithWebIdentityInput)) (*sts.AssumeRoleWithWebIdentityOutput, error) {
		in := &sts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(roleARN("web")), RoleSessionName: aws.String("pod-1"),
			WebIdentityToken: aws.String(signJWT(t, f.rsaKey, "k1", claims)),
		}
		if mutate != nil {
			mutate(in)
		}
		return anon.AssumeRoleWithWebIdentity(bg, in)
	}
	out, err := call(webClaims(now), nil)
	if err != nil {
		t.Fatalf("AssumeRoleWithWebIdentity: %v", err)
	}
	if aws.ToString(out.SubjectFromWebIdentityToken) != testSubject ||
		aws.ToString(out.Provider) != "arn:aws:iam::123456789012:oidc-provider/oidc.example.test" ||
		aws.ToString(out.Audience) != "sts.amazonaws.com" {
		t.Errorf("web identity result: sub %q provider %q aud %q", aws.ToString(out.SubjectFromWebIdentityToken), aws.ToString(out.Provider), aws.ToString(out.Audience))
	}
	id, err := f.sessionClient(out.Credentials).GetCallerIdentity(bg, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if *id.Arn != assumedARN("web", "pod-1") {
		t.Errorf("identity %s", *id.Arn)
	}

	with := func(k string, v any) map[string]any {
		c := webClaims(now)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	otherKey := mustRSA(t)
	for _, tc := range []struct {
		name   string
		token  func() string
		claims map[string]any
		code   string
	}{
		{name: "wrong subject", claims: with("sub", "system:serviceaccount:prod:other"), code: "AccessDenied"},
		{name: "wrong audience", claims: with("aud", "someone-else"), code: "InvalidIdentityToken"},
		{name: "audience list", claims: with("aud", []string{"x", "sts.amazonaws.com"})},
		{name: "unknown issuer", claims: with("iss", "https://evil.example"), code: "InvalidIdentityToken"},
		{name: "expired", claims: with("exp", now.Add(-time.Minute).Unix()), code: "ExpiredTokenException"},
		{name: "no exp", claims: with("exp", nil), code: "InvalidIdentityToken"},
		{name: "fractional exp", claims: with("exp", 1.5e9+0.5), code: "InvalidIdentityToken"},
		{name: "not yet valid", claims: with("nbf", now.Add(time.Hour).Unix()), code: "InvalidIdentityToken"},
		{name: "issued in the future", claims: with("iat", now.Add(time.Hour).Unix()), code: "InvalidIdentityToken"},
		{name: "signed by another key", token: func() string { return signJWT(t, otherKey, "k1", webClaims(now)) }, code: "InvalidIdentityToken"},
		{name: "alg none", token: func() string {
			tok := signJWT(t, f.rsaKey, "k1", webClaims(now))
			parts := strings.Split(tok, ".")
			return b64([]byte(`{"alg":"none"}`)) + "." + parts[1] + "."
		}, code: "InvalidIdentityToken"},
		{name: "garbage", token: func() string { return "not-a-jwt" }, code: "InvalidIdentityToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := tc.claims
			if claims == nil {
				claims = webClaims(now)
			}
			_, err := call(claims, func(in *sts.AssumeRoleWithWebIdentityInput) {
				if tc.token != nil {
					in.WebIdentityToken = aws.String(tc.token())
				}
			})
			if tc.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantCode(t, err, tc.code, 0)
		})
	}
	_, err = call(webClaims(now), func(in *sts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(60) })
	wantCode(t, err, "ValidationError", 400)
	_, err = call(webClaims(now), func(in *sts.AssumeRoleWithWebIdentityInput) {
		in.Policy = aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*","Sid":"` + strings.Repeat("a", 2048) + `"}]}`)
	})
	wantCode(t, err, "ValidationError", 400)
}

// TestSameDecisionHTTPAndInProcess shows the Query API and the in-process
// Source share one validate-and-authorize function: what one denies, the
// other denies, with the same code.
func TestSameDecisionHTTPAndInProcess(t *testing.T) {
	f := newFixture(t, nil) // sts.local.caller is alice
	src := NewSource(f.issuer)
	for _, tc := range []struct {
		name, role, externalID, code string
		tags                         []agent.Tag
	}{
		{name: "missing external id", role: "extid", code: "AccessDenied"},
		{name: "wrong external id", role: "extid", externalID: "secret-43", code: "AccessDenied"},
		{name: "explicit deny", role: "denied", code: "AccessDenied"},
		{name: "tags without TagSession", role: "notag", tags: []agent.Tag{{Key: "k", Value: "v"}}, code: "AccessDenied"},
		{name: "external id too short", role: "extid", externalID: "x", code: "ValidationError"},
		{name: "allowed", role: "extid", externalID: "secret-42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &sts.AssumeRoleInput{RoleArn: aws.String(roleARN(tc.role)), RoleSessionName: aws.String("same")}
			if tc.externalID != "" {
				in.ExternalId = aws.String(tc.externalID)
			}
			for _, tg := range tc.tags {
				in.Tags = append(in.Tags, types.Tag{Key: aws.String(tg.Key), Value: aws.String(tg.Value)})
			}
			_, httpErr := f.alice().AssumeRole(bg, in)
			_, srcErr := src.Retrieve(bg, agent.Request{RoleARN: roleARN(tc.role), SessionName: "same", ExternalID: tc.externalID, Tags: tc.tags})
			if tc.code == "" {
				if httpErr != nil || srcErr != nil {
					t.Fatalf("want success: http %v, in process %v", httpErr, srcErr)
				}
				return
			}
			wantCode(t, httpErr, tc.code, 0)
			se, ok := srcErr.(*agent.SourceError)
			if !ok || se.Code != tc.code || se.Retryable {
				t.Fatalf("in process: %#v, want %s", srcErr, tc.code)
			}
		})
	}
}

// Raw HTTP: what the SDK cannot be made to send.

func TestRawClockSkewAndTampering(t *testing.T) {
	f := newFixture(t, nil)
	form := url.Values{"Action": {"GetCallerIdentity"}, "Version": {APIVersion}}
	now := time.Now()
	if st, _, body := f.rawCall(t, aliceKey, aliceSecret, "", form, now, nil); st != 200 {
		t.Fatalf("raw signed call: %d %s", st, body)
	}
	for _, tc := range []struct {
		name   string
		at     time.Time
		tamper func(*http.Request)
		status int
		code   string
	}{
		{"skew -10m", now.Add(-10 * time.Minute), nil, 403, "SignatureDoesNotMatch"},
		{"skew +10m", now.Add(10 * time.Minute), nil, 403, "SignatureDoesNotMatch"},
		{"tampered signature", now, func(r *http.Request) {
			a := r.Header.Get("Authorization")
			last := a[len(a)-1]
			flip := byte('0')
			if last == '0' {
				flip = '1'
			}
			r.Header.Set("Authorization", a[:len(a)-1]+string(flip))
		}, 403, "SignatureDoesNotMatch"},
		{"tampered body", now, func(r *http.Request) {
			b := url.Values{"Action": {"GetCallerIdentity"}, "Version": {APIVersion}, "X": {"y"}}.Encode()
			r.Body = io.NopCloser(strings.NewReader(b))
			r.ContentLength = int64(len(b))
		}, 403, "SignatureDoesNotMatch"},
		{"no signature", now, func(r *http.Request) { r.Header.Del("Authorization") }, 403, "MissingAuthenticationToken"},
		{"garbled authorization", now, func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x") }, 400, "IncompleteSignature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, doc, body := f.rawCall(t, aliceKey, aliceSecret, "", form, tc.at, tc.tamper)
			if st != tc.status || doc.Error.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s: %s", st, doc.Error.Code, tc.status, tc.code, body)
			}
			checkErrorDoc(t, doc)
		})
	}
}
