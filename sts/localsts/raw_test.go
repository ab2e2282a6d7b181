package localsts

import (
	"context"
	"crypto/sha256"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// checkErrorDoc asserts the error document has reference C.4's shape.
func checkErrorDoc(t *testing.T, doc stsErrorDoc) {
	t.Helper()
	if doc.XMLName.Local != "ErrorResponse" || doc.XMLName.Space != Namespace {
		t.Errorf("root %v, want ErrorResponse in %s", doc.XMLName, Namespace)
	}
	if doc.Error.Type != "Sender" && doc.Error.Type != "Receiver" || doc.Error.Message == "" || doc.RequestID == "" {
		t.Errorf("error document %+v", doc)
	}
}

func TestRawResponseShape(t *testing.T) {
	f := newFixture(t, nil)
	form := url.Values{"Action": {"GetCallerIdentity"}, "Version": {APIVersion}}
	body := form.Encode()
	req, _ := http.NewRequest(http.MethodPost, f.server.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: aliceKey, SecretAccessKey: aliceSecret}, req, hexString(sum[:]), "sts", testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc struct {
		XMLName xml.Name
		Result  struct {
			UserID  string `xml:"UserId"`
			Account string
			Arn     string
		} `xml:"GetCallerIdentityResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if doc.XMLName.Local != "GetCallerIdentityResponse" || doc.XMLName.Space != Namespace {
		t.Errorf("root %v", doc.XMLName)
	}
	if doc.Result.Arn != "arn:aws:iam::123456789012:user/alice" || doc.Result.Account != testAccount {
		t.Errorf("result %+v", doc.Result)
	}
	if id := resp.Header.Get("X-Amzn-Requestid"); id == "" || id != doc.RequestID {
		t.Errorf("request id header %q, element %q", id, doc.RequestID)
	}
	if _, err := http.ParseTime(resp.Header.Get("Date")); err != nil {
		t.Errorf("Date header %q: %v", resp.Header.Get("Date"), err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/xml" {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestRawParameters(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	base := func(action string, kv ...string) url.Values {
		v := url.Values{"Action": {action}, "Version": {APIVersion}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v
	}
	arn := roleARN("direct")
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"missing action", url.Values{"Version": {APIVersion}}, 400, "MissingAction"},
		{"missing version", url.Values{"Action": {"GetCallerIdentity"}}, 400, "MissingParameter"},
		{"wrong version", url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2010-01-01"}}, 400, "InvalidAction"},
		{"unknown action", base("GetFederationToken"), 400, "InvalidAction"},
		{"missing role arn", base("AssumeRole", "RoleSessionName", "s1"), 400, "ValidationError"},
		{"missing session name", base("AssumeRole", "RoleArn", arn), 400, "ValidationError"},
		{"duration not a number", base("AssumeRole", "RoleArn", arn, "RoleSessionName", "s1", "DurationSeconds", "1h"), 400, "ValidationError"},
		{"duration zero", base("AssumeRole", "RoleArn", arn, "RoleSessionName", "s1", "DurationSeconds", "0"), 400, "ValidationError"},
		{"empty policy", base("AssumeRole", "RoleArn", arn, "RoleSessionName", "s1", "Policy", ""), 400, "ValidationError"},
		{"empty external id", base("AssumeRole", "RoleArn", arn, "RoleSessionName", "s1", "ExternalId", ""), 400, "ValidationError"},
		{"policy control chars", base("AssumeRole", "RoleArn", arn, "RoleSessionName", "s1", "Policy", "{\x01}"), 400, "ValidationError"},
		{"tag without value", base("AssumeRole", "RoleArn", arn, "RoleSessionName", "s1", "Tags.member.1.Key", "k"), 400, "ValidationError"},
		{"bad list index", base("AssumeRole", "RoleArn", arn, "RoleSessionName", "s1", "Tags.member.x.Key", "k"), 400, "InvalidParameterValue"},
		{"policy arn without arn", base("AssumeRole", "RoleArn", arn, "RoleSessionName", "s1", "PolicyArns.member.1.Arn", "x"), 400, "InvalidParameterValue"},
		{"web identity token short", base("AssumeRoleWithWebIdentity", "RoleArn", roleARN("web"), "RoleSessionName", "s1", "WebIdentityToken", "abc"), 400, "ValidationError"},
		{"web identity token missing", base("AssumeRoleWithWebIdentity", "RoleArn", roleARN("web"), "RoleSessionName", "s1"), 400, "ValidationError"},
		{"session token duration", base("GetSessionToken", "DurationSeconds", "600"), 400, "ValidationError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, doc, body := f.rawCall(t, aliceKey, aliceSecret, "", tc.form, now, nil)
			if st != tc.status || doc.Error.Code != tc.code {
				t.Fatalf("got %d %s, want %d %s: %s", st, doc.Error.Code, tc.status, tc.code, body)
			}
			checkErrorDoc(t, doc)
		})
	}

	// Tags in the query protocol's list encoding, out of order.
	form := base("AssumeRole", "RoleArn", arn, "RoleSessionName", "tagged",
		"Tags.member.2.Key", "b", "Tags.member.2.Value", "2",
		"Tags.member.1.Key", "a", "Tags.member.1.Value", "1",
		"TransitiveTagKeys.member.1", "a")
	st, _, body := f.rawCall(t, aliceKey, aliceSecret, "", form, now, nil)
	if st != 200 {
		t.Fatalf("tagged AssumeRole: %d %s", st, body)
	}
	var out struct {
		Result struct {
			Credentials struct{ AccessKeyId, SessionToken string }
		} `xml:"AssumeRoleResult"`
	}
	if err := xml.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	claims, _, err := f.issuer.Verify(out.Result.Credentials.AccessKeyId, out.Result.Credentials.SessionToken)
	if err != nil {
		t.Fatal(err)
	}
	if claims.Tags["a"] != "1" || claims.Tags["b"] != "2" || len(claims.Transitive) != 1 || claims.Transitive[0] != "a" {
		t.Errorf("tags %v transitive %v", claims.Tags, claims.Transitive)
	}
}

func TestRawSessionTokenRules(t *testing.T) {
	f := newFixture(t, nil)
	out, err := f.alice().AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), RoleSessionName: aws.String("raw")})
	if err != nil {
		t.Fatal(err)
	}
	c := out.Credentials
	form := url.Values{"Action": {"GetCallerIdentity"}, "Version": {APIVersion}}
	now := time.Now()

	// ASIA key without its token.
	st, doc, body := f.rawCall(t, *c.AccessKeyId, *c.SecretAccessKey, "", form, now, nil)
	if st != 403 || doc.Error.Code != "InvalidClientTokenId" {
		t.Errorf("no token: %d %s", st, body)
	}
	// The token sent but not signed.
	st, doc, body = f.rawCall(t, *c.AccessKeyId, *c.SecretAccessKey, "", form, now, func(r *http.Request) {
		r.Header.Set("X-Amz-Security-Token", *c.SessionToken)
	})
	if st != 400 || doc.Error.Code != "IncompleteSignature" {
		t.Errorf("unsigned token: %d %s", st, body)
	}
	// Another session's token with this key.
	other, err := f.alice().AssumeRole(bg, &sts.AssumeRoleInput{RoleArn: aws.String(roleARN("direct")), RoleSessionName: aws.String("other")})
	if err != nil {
		t.Fatal(err)
	}
	st, doc, body = f.rawCall(t, *c.AccessKeyId, *c.SecretAccessKey, *other.Credentials.SessionToken, form, now, nil)
	if st != 403 || doc.Error.Code != "InvalidClientTokenId" {
		t.Errorf("swapped token: %d %s", st, body)
	}
	// A long-term key with a session token.
	st, doc, body = f.rawCall(t, aliceKey, aliceSecret, *c.SessionToken, form, now, nil)
	if st != 403 || doc.Error.Code != "InvalidClientTokenId" {
		t.Errorf("AKIA with token: %d %s", st, body)
	}
	// A signature scoped to another service.
	st, doc, body = f.rawCallService(t, "iam", form, now)
	if st != 403 || doc.Error.Code != "SignatureDoesNotMatch" {
		t.Errorf("service iam: %d %s", st, body)
	}
}

func (f *fixture) rawCallService(t *testing.T, service string, form url.Values, now time.Time) (int, stsErrorDoc, []byte) {
	return f.rawCall(t, "", "", "", form, now, func(r *http.Request) {
		body := form.Encode()
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: aliceKey, SecretAccessKey: aliceSecret}, r, hexString(sum[:]), service, testRegion, now); err != nil {
			t.Fatal(err)
		}
	})
}

func TestRawUnsignedPayload(t *testing.T) {
	f := newFixture(t, nil)
	now := time.Now()
	// Parameters in a body the signature does not cover are refused.
	form := url.Values{"Action": {"GetCallerIdentity"}, "Version": {APIVersion}}
	body := form.Encode()
	req, _ := http.NewRequest(http.MethodPost, f.server.URL+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner().SignHTTP(bg, aws.Credentials{AccessKeyID: aliceKey, SecretAccessKey: aliceSecret}, req, "UNSIGNED-PAYLOAD", "sts", testRegion, now); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(raw), "UNSIGNED-PAYLOAD") {
		t.Errorf("unsigned payload with body: %d %s", resp.StatusCode, raw)
	}
	// The same parameters in the signed query work, with GET.
	req, _ = http.NewRequest(http.MethodGet, f.server.URL+"/?"+body, nil)
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	if err := v4.NewSigner().SignHTTP(bg, aws.Credentials{AccessKeyID: aliceKey, SecretAccessKey: aliceSecret}, req, "UNSIGNED-PAYLOAD", "sts", testRegion, now); err != nil {
		t.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), "user/alice") {
		t.Errorf("GET with query: %d %s", resp.StatusCode, raw)
	}
}

func TestPresignedGetCallerIdentity(t *testing.T) {
	f := newFixture(t, nil)
	presigner := sts.NewPresignClient(f.alice())
	p, err := presigner.PresignGetCallerIdentity(bg, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(p.Method, p.URL, nil)
	for k, vs := range p.SignedHeader {
		if k != "Host" {
			req.Header[k] = vs
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(raw), "user/alice") {
		t.Errorf("presigned: %d %s", resp.StatusCode, raw)
	}
}

func TestHandlerLimits(t *testing.T) {
	f := newFixture(t, nil)
	h := f.server.Config.Handler
	big := strings.NewReader("Action=GetCallerIdentity&Version=2011-06-15&X=" + strings.Repeat("a", DefaultMaxBodyBytes))
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodPost, "/", big))
	if rr.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rr.Body.String(), "RequestEntityTooLarge") {
		t.Errorf("large body: %d %s", rr.Code, rr.Body)
	}
	rr = httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(http.MethodPut, "/", nil))
	if rr.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %d", rr.Code)
	}
	rr = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"Action":"GetCallerIdentity"}`))
	req.Header.Set("Content-Type", "application/json")
	h.ServeHTTP(rr, req)
	if rr.Code != http.StatusBadRequest {
		t.Errorf("JSON body: %d %s", rr.Code, rr.Body)
	}
	if _, err := NewServer(ServerOptions{}); err == nil {
		t.Error("NewServer without issuer succeeded")
	}
}
