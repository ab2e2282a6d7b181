package localsts

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/internal/configtest"
)

const (
	testAccount = "123456789012"
	testRegion  = "us-east-1"
	testIssuer  = "https://oidc.example.test"
	testSubject = "system:serviceaccount:prod:app"

	aliceKey    = "AKIAALICEALICEALICE2"
	aliceSecret = "alice/secret/key/0123456789abcdefghijklm"
	bobKey      = "AKIABOBBOBBOBBOBBOB2"
	bobSecret   = "bob/secret/key/0123456789abcdefghijklmnop"
)

// testYAML is the emulated account of the tests. alice may assume every
// role by identity policy except "denied"; bob has no policies. %s is the
// JWKS file of the OIDC provider.
const testYAML = `
region: us-east-1
sts:
  mode: local
  local:
    account_id: "123456789012"
    caller: alice
    oidc_providers:
      - issuer: https://oidc.example.test
        audiences: [sts.amazonaws.com]
        jwks_file: %s
    managed_policies:
      ReadOnlyS3:
        Version: "2012-10-17"
        Statement: [{ Effect: Allow, Action: "s3:Get*", Resource: "*" }]
    users:
      - name: alice
        access_key_id: AKIAALICEALICEALICE2
        secret_access_key: alice/secret/key/0123456789abcdefghijklm
        policies:
          - Version: "2012-10-17"
            Statement:
              - { Sid: AssumeAny, Effect: Allow, Action: "sts:AssumeRole", Resource: "arn:aws:iam::123456789012:role/*" }
              - { Sid: NotThatOne, Effect: Deny, Action: "sts:AssumeRole", Resource: "arn:aws:iam::123456789012:role/denied" }
      - name: bob
        access_key_id: AKIABOBBOBBOBBOBBOB2
        secret_access_key: bob/secret/key/0123456789abcdefghijklmnop
roles:
  # Trusts alice by ARN: no identity policy needed.
  - name: direct
    arn: arn:aws:iam::123456789012:role/direct
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: { AWS: "arn:aws:iam::123456789012:user/alice" }
          Action: ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
    permission_policies:
      - Version: "2012-10-17"
        Statement:
          - { Sid: ReadBucket, Effect: Allow, Action: "s3:GetObject", Resource: "arn:aws:s3:::bucket/*" }
          - { Sid: Chain, Effect: Allow, Action: ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"], Resource: "*" }
          - { Sid: NoSecrets, Effect: Deny, Action: "s3:*", Resource: "arn:aws:s3:::bucket/secret/*" }
    session_policy:
      Version: "2012-10-17"
      Statement: [{ Effect: Allow, Action: "s3:*", Resource: "arn:aws:s3:::bucket/public/*" }]
  # Trusts the whole account: the caller's identity policy must allow too.
  - name: account
    arn: arn:aws:iam::123456789012:role/account
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: { AWS: "arn:aws:iam::123456789012:root" }
          Action: ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
  - name: denied
    arn: arn:aws:iam::123456789012:role/denied
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - { Effect: Allow, Principal: { AWS: "123456789012" }, Action: "sts:AssumeRole" }
  - name: extid
    arn: arn:aws:iam::123456789012:role/extid
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: { AWS: "arn:aws:iam::123456789012:user/alice" }
          Action: "sts:AssumeRole"
          Condition: { StringEquals: { "sts:ExternalId": "secret-42" } }
  - name: notag
    arn: arn:aws:iam::123456789012:role/notag
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - { Effect: Allow, Principal: { AWS: "arn:aws:iam::123456789012:user/alice" }, Action: "sts:AssumeRole" }
  # Trust denies outright, though alice's identity policy allows.
  - name: trustdeny
    arn: arn:aws:iam::123456789012:role/trustdeny
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - { Effect: Allow, Principal: { AWS: "123456789012" }, Action: "sts:AssumeRole" }
        - { Effect: Deny, Principal: { AWS: "arn:aws:iam::123456789012:user/alice" }, Action: "sts:AssumeRole" }
  # Chained from "direct" by its role ARN.
  - name: chained
    arn: arn:aws:iam::123456789012:role/path/chained
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: { AWS: "arn:aws:iam::123456789012:role/direct" }
          Action: ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
  # Trusts one session of "direct" by its session ARN.
  - name: sessiontrust
    arn: arn:aws:iam::123456789012:role/sessiontrust
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - { Effect: Allow, Principal: { AWS: "arn:aws:sts::123456789012:assumed-role/direct/named" }, Action: "sts:AssumeRole" }
  - name: web
    arn: arn:aws:iam::123456789012:role/web
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal: { Federated: "arn:aws:iam::123456789012:oidc-provider/oidc.example.test" }
          Action: "sts:AssumeRoleWithWebIdentity"
          Condition:
            StringEquals:
              "oidc.example.test:sub": "system:serviceaccount:prod:app"
              "oidc.example.test:aud": "sts.amazonaws.com"
            StringLike:
              "aws:FederatedProvider": "arn:aws:iam::*:oidc-provider/oidc.example.test"
clients:
  - name: local
    match: { source_cidrs: ["127.0.0.1/32"] }
    roles: [direct]
`

func roleARN(name string) string { return "arn:aws:iam::" + testAccount + ":role/" + name }

// fixture is an emulated account with its server on 127.0.0.1.
type fixture struct {
	t      *testing.T
	cfg    *config.Config
	issuer *Issuer
	server *httptest.Server
	rsaKey *rsa.PrivateKey
	jwks   string // path of the JWKS file
}

var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func parseTestConfig(t testing.TB, yml string) *config.Config {
	t.Helper()
	return configtest.Parse(t, yml)
}

// newFixture builds the account of testYAML; clk is the issuer's clock
// (nil = real). The server checks signatures with the real clock.
func newFixture(t *testing.T, clk clock.Clock) *fixture {
	t.Helper()
	f := &fixture{t: t, rsaKey: testRSAKey()}
	f.jwks = filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, f.jwks, jwkRSA("k1", &f.rsaKey.PublicKey))
	f.cfg = parseTestConfig(t, strings.Replace(testYAML, "%s", f.jwks, 1))
	acct, err := NewAccount(f.cfg, RandomUserKeys)
	if err != nil {
		t.Fatalf("NewAccount: %v", err)
	}
	if clk == nil {
		clk = clock.Real{}
	}
	if f.issuer, err = NewIssuer(RandomKey(), clk, acct); err != nil {
		t.Fatalf("NewIssuer: %v", err)
	}
	srv, err := NewServer(ServerOptions{Issuer: f.issuer, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	f.server = httptest.NewServer(srv.Handler())
	t.Cleanup(f.server.Close)
	return f
}

// client is aws-sdk-go-v2's STS client, unmodified, pointed at the server.
func (f *fixture) client(creds aws.CredentialsProvider) *sts.Client {
	return sts.NewFromConfig(aws.Config{
		Region:       testRegion,
		Credentials:  creds,
		BaseEndpoint: aws.String(f.server.URL),
	})
}

func static(akid, secret, token string) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(akid, secret, token)
}

func (f *fixture) alice() *sts.Client { return f.client(static(aliceKey, aliceSecret, "")) }

// sessionClient returns a client signing with STS-issued credentials.
func (f *fixture) sessionClient(c *types.Credentials) *sts.Client {
	return f.client(static(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken))
}

// wantCode asserts err is an STS error with code and HTTP status.
func wantCode(t *testing.T, err error, code string, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %s", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error, want %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("code %q (%s), want %q", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	var re *awshttp.ResponseError
	if status != 0 && errors.As(err, &re) && re.HTTPStatusCode() != status {
		t.Fatalf("status %d, want %d for %s", re.HTTPStatusCode(), status, code)
	}
}

// JWT helpers.

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwkRSA(kid string, k *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func jwkEC(kid string, k *ecdsa.PublicKey) map[string]string {
	b, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	size := (len(b) - 1) / 2
	return map[string]string{"kty": "EC", "kid": kid, "crv": k.Curve.Params().Name,
		"x": b64(b[1 : 1+size]), "y": b64(b[1+size:])}
}

func writeJWKS(t testing.TB, path string, keys ...map[string]string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"keys": keys})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// signJWT signs claims with an RSA (RS256) or EC P-256 (ES256) key.
func signJWT(t testing.TB, key crypto.Signer, kid string, claims map[string]any) string {
	t.Helper()
	alg := "RS256"
	if _, ok := key.(*ecdsa.PrivateKey); ok {
		alg = "ES256"
	}
	h, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	c, _ := json.Marshal(claims)
	signed := b64(h) + "." + b64(c)
	digest := sha256.Sum256([]byte(signed))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		s, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = s
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	}
	return signed + "." + b64(sig)
}

// webClaims are valid claims for the "web" role, valid for an hour.
func webClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": testSubject, "aud": "sts.amazonaws.com",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// Raw signed HTTP, for what the SDK would correct or refuse to send.

// rawCall signs form with the given key at signTime and posts it.
func (f *fixture) rawCall(t *testing.T, akid, secret, token string, form url.Values, signTime time.Time, tamper func(*http.Request)) (int, stsErrorDoc, []byte) {
	t.Helper()
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, f.server.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if akid != "" {
		sum := sha256.Sum256([]byte(body))
		creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hexString(sum[:]), "sts", testRegion, signTime); err != nil {
			t.Fatal(err)
		}
	}
	if tamper != nil {
		tamper(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	var doc stsErrorDoc
	xml.Unmarshal(buf.Bytes(), &doc)
	return resp.StatusCode, doc, buf.Bytes()
}

type stsErrorDoc struct {
	XMLName xml.Name
	Error   struct {
		Type, Code, Message string
	}
	RequestID string `xml:"RequestId"`
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

func mustRSA(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
