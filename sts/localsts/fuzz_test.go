package localsts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// FuzzQueryAPI posts arbitrary form bodies, unsigned and signed with a
// valid user key, and requires an XML answer: an ErrorResponse with a code,
// or an <Action>Response on 200. Never a panic.
func FuzzQueryAPI(f *testing.F) {
	for _, seed := range []string{
		"Action=GetCallerIdentity&Version=2011-06-15",
		"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/direct&RoleSessionName=s1&Tags.member.1.Key=a&Tags.member.1.Value=b&TransitiveTagKeys.member.1=a",
		"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/direct&RoleSessionName=s1&Policy=%7B%7D&PolicyArns.member.1.arn=arn:aws:iam::123456789012:policy/ReadOnlyS3",
		"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn:aws:iam::123456789012:role/web&RoleSessionName=s1&WebIdentityToken=a.b.c",
		"Action=GetSessionToken&Version=2011-06-15&DurationSeconds=900",
		"Action=AssumeRole&Tags.member.99999999999999999999.Key=x",
		"%zz=1",
		"",
	} {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := fuzzHandler(f, now)
	f.Fuzz(func(t *testing.T, body string, signed bool) {
		req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8171/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if signed {
			sum := sha256.Sum256([]byte(body))
			creds := aws.Credentials{AccessKeyID: aliceKey, SecretAccessKey: aliceSecret}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hexString(sum[:]), "sts", testRegion, now); err != nil {
				t.Skip()
			}
		}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		var doc struct {
			XMLName xml.Name
			Error   struct{ Code string }
		}
		if err := xml.NewDecoder(bytes.NewReader(rr.Body.Bytes())).Decode(&doc); err != nil {
			t.Fatalf("status %d, body not XML (%v): %q", rr.Code, err, rr.Body.String())
		}
		if rr.Code == http.StatusOK {
			if !strings.HasSuffix(doc.XMLName.Local, "Response") || doc.XMLName.Local == "ErrorResponse" {
				t.Fatalf("200 with root %s", doc.XMLName.Local)
			}
			return
		}
		if doc.XMLName.Local != "ErrorResponse" || doc.Error.Code == "" || rr.Code >= 500 {
			t.Fatalf("status %d root %s code %q", rr.Code, doc.XMLName.Local, doc.Error.Code)
		}
	})
}

// fuzzHandler is the handler of the test account, with a fixed clock so
// that signatures made at now verify.
func fuzzHandler(f *testing.F, now time.Time) http.Handler {
	jwks := f.TempDir() + "/jwks.json"
	writeJWKS(f, jwks, jwkRSA("k1", &testRSAKey().PublicKey))
	cfg := parseTestConfig(f, strings.Replace(testYAML, "%s", jwks, 1))
	acct, err := NewAccount(cfg, RandomUserKeys)
	if err != nil {
		f.Fatal(err)
	}
	clk := clock.NewFake(now)
	iss, err := NewIssuer(RandomKey(), clk, acct)
	if err != nil {
		f.Fatal(err)
	}
	srv, err := NewServer(ServerOptions{Issuer: iss, Logger: zap.NewNop(), Clock: clk})
	if err != nil {
		f.Fatal(err)
	}
	return srv.Handler()
}
