package awssts

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"go.uber.org/zap/zaptest"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/awstest"
	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/sts/localsts"
)

const (
	acct       = "123456789012"
	userKey    = "AKIAAAAAAAAAAAAAAAAA"
	userSecret = "sidecar-secret-key-0123456789"
)

// stsYAML is the account the local STS emulates for these tests: the
// sidecar's user, a role with every AssumeRole option allowed, a role
// assumable only from it (chaining), and a web identity role.
const stsYAML = `
sts:
  mode: local
  local:
    account_id: "` + acct + `"
    caller: sidecar
    oidc_providers:
      - issuer: https://oidc.example.test
        audiences: [sts.amazonaws.com]
        jwks_file: %s
    managed_policies:
      ReadOnly: {Version: 2012-10-17, Statement: [{Effect: Allow, Action: "s3:Get*", Resource: "*"}]}
    users:
      - name: sidecar
        access_key_id: ` + userKey + `
        secret_access_key: ` + userSecret + `
roles:
  - name: target
    trust_policy:
      Version: 2012-10-17
      Statement:
        - Effect: Allow
          Principal: {AWS: "arn:aws:iam::` + acct + `:user/sidecar"}
          Action: [sts:AssumeRole, sts:TagSession, sts:SetSourceIdentity]
          Condition: {StringEquals: {sts:ExternalId: ext-123}}
    permission_policies:
      - {Version: 2012-10-17, Statement: [{Effect: Allow, Action: "sts:AssumeRole", Resource: "*"}, {Effect: Allow, Action: "s3:*", Resource: "*"}]}
  - name: second
    trust_policy:
      Version: 2012-10-17
      Statement:
        - {Effect: Allow, Principal: {AWS: "arn:aws:iam::` + acct + `:role/target"}, Action: [sts:AssumeRole, sts:SetSourceIdentity, sts:TagSession]}
  - name: denied
    trust_policy:
      Version: 2012-10-17
      Statement:
        - {Effect: Allow, Principal: {AWS: "arn:aws:iam::` + acct + `:user/someone-else"}, Action: sts:AssumeRole}
  - name: web
    trust_policy:
      Version: 2012-10-17
      Statement:
        - Effect: Allow
          Principal: {Federated: "arn:aws:iam::` + acct + `:oidc-provider/oidc.example.test"}
          Action: sts:AssumeRoleWithWebIdentity
          Condition: {StringEquals: {"oidc.example.test:sub": "system:serviceaccount:ns:app"}}
`

// recorder wraps the local STS server: it records every request's
// parameters and can answer the first N with throttling.
type recorder struct {
	next     http.Handler
	mu       sync.Mutex
	requests []url.Values
	throttle int
	// code and status of the throttle answers (default Throttling, 400).
	code   string
	status int
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	r.mu.Lock()
	r.requests = append(r.requests, form)
	throttle := r.throttle > 0
	if throttle {
		r.throttle--
	}
	code, status := r.code, r.status
	r.mu.Unlock()
	if code == "" {
		code, status = "Throttling", http.StatusBadRequest
	}
	if throttle {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>Rate exceeded</Message></Error><RequestId>x</RequestId></ErrorResponse>`, code)
		return
	}
	r.next.ServeHTTP(w, req)
}

func (r *recorder) actions() []url.Values {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]url.Values(nil), r.requests...)
}

type rig struct {
	url    string
	rec    *recorder
	key    *rsa.PrivateKey
	src    *Source
	tmpDir string
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	jwksPath := filepath.Join(dir, "jwks.json")
	os.WriteFile(jwksPath, jwks, 0o600)
	cfg, err := config.Parse([]byte(fmt.Sprintf(stsYAML, jwksPath)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Resolve(os.LookupEnv, os.ReadFile); err != nil {
		t.Fatal(err)
	}
	acc, err := localsts.NewAccount(cfg, localsts.RandomUserKeys)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := localsts.NewIssuer(localsts.RandomKey(), clock.Real{}, acc)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := localsts.NewServer(localsts.ServerOptions{Issuer: iss, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{next: srv.Handler()}
	hs := httptest.NewServer(rec) // 127.0.0.1
	t.Cleanup(hs.Close)

	// The sidecar's own credentials: the default chain, from the environment.
	awstest.Isolate(t)
	t.Setenv("AWS_ACCESS_KEY_ID", userKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", userSecret)
	src, err := New(context.Background(), Options{Region: "us-east-1", Endpoint: hs.URL, OwnListeners: []string{"127.0.0.1:8169"}, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{url: hs.URL, rec: rec, key: key, src: src, tmpDir: dir}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (r *rig) jwt(t *testing.T, sub string) string {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"})
	now := time.Now()
	c, _ := json.Marshal(map[string]any{"iss": "https://oidc.example.test", "aud": "sts.amazonaws.com", "sub": sub,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	signed := b64(h) + "." + b64(c)
	d := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, r.key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64(sig)
}

func role(name string) string { return "arn:aws:iam::" + acct + ":role/" + name }

// callerIdentity asks the local STS who the credentials are.
func (r *rig) callerIdentity(t *testing.T, c *agent.Credentials) string {
	t.Helper()
	cl := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(r.url),
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)})
	out, err := cl.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity with the issued credentials: %v", err)
	}
	return *out.Arn
}

func TestEveryAssumeRoleOptionArrives(t *testing.T) {
	r := newRig(t)
	req := agent.Request{
		RoleARN: role("target"), SessionName: "app-session", Duration: 45 * time.Minute,
		ExternalID: "ext-123", SourceIdentity: "alice",
		SessionPolicy:     `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`,
		PolicyARNs:        []string{"arn:aws:iam::" + acct + ":policy/ReadOnly"},
		Tags:              []agent.Tag{{Key: "team", Value: "blue"}, {Key: "env", Value: "dev"}},
		TransitiveTagKeys: []string{"team"},
	}
	c, err := r.src.Retrieve(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	got := r.rec.actions()[0]
	want := map[string]string{
		"Action": "AssumeRole", "RoleArn": role("target"), "RoleSessionName": "app-session", "DurationSeconds": "2700",
		"ExternalId": "ext-123", "SourceIdentity": "alice", "Policy": req.SessionPolicy,
		"PolicyArns.member.1.arn": "arn:aws:iam::" + acct + ":policy/ReadOnly",
		"Tags.member.1.Key":       "team", "Tags.member.1.Value": "blue", "Tags.member.2.Key": "env", "Tags.member.2.Value": "dev",
		"TransitiveTagKeys.member.1": "team",
	}
	for k, v := range want {
		if got.Get(k) != v {
			t.Errorf("server received %s=%q, want %q", k, got.Get(k), v)
		}
	}
	if !strings.HasPrefix(c.AccessKeyID, "ASIA") || c.AssumedRoleARN != "arn:aws:sts::"+acct+":assumed-role/target/app-session" {
		t.Fatalf("credentials %s / %s", c.AccessKeyID, c.AssumedRoleARN)
	}
	if left := time.Until(c.Expiration); left < 44*time.Minute || left > 46*time.Minute {
		t.Fatalf("expiration in %s, want 45m", left)
	}
	// The whole chain is real: the emulator accepts what it issued.
	if arn := r.callerIdentity(t, c); arn != c.AssumedRoleARN {
		t.Fatalf("GetCallerIdentity = %s", arn)
	}
}

// TestChainThroughAgent: the agent resolves the first hop through its
// cache and the source signs the second call with the first hop's keys.
func TestChainThroughAgent(t *testing.T) {
	r := newRig(t)
	cfg, err := config.Parse([]byte(`
sts: {mode: aws, max_qps: 1000}
roles:
  - {name: first, arn: "` + role("target") + `", external_id: ext-123}
  - {name: hop, arn: "` + role("second") + `", via: first, duration: 1h}
clients:
  - {name: cli, match: {token: t}, roles: [hop, first]}
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Resolve(os.LookupEnv, os.ReadFile)
	a, err := agent.New(agent.Options{Source: r.src, DisableWarm: true, Logger: zaptest.NewLogger(t)}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	c, err := a.Credentials(context.Background(), &agent.Caller{Token: "t", HasToken: true}, "hop")
	if err != nil {
		t.Fatal(err)
	}
	reqs := r.rec.actions()
	if len(reqs) != 2 || reqs[0].Get("RoleArn") != role("target") || reqs[1].Get("RoleArn") != role("second") {
		t.Fatalf("requests %v", reqs)
	}
	if arn := r.callerIdentity(t, c); arn != "arn:aws:sts::"+acct+":assumed-role/second/cli" {
		t.Fatalf("chained identity %s", arn)
	}
	before := len(r.rec.actions())
	if _, err := a.Credentials(context.Background(), &agent.Caller{Token: "t", HasToken: true}, "first"); err != nil {
		t.Fatal(err)
	}
	if len(r.rec.actions()) != before {
		t.Fatal("the first hop was not served from the cache")
	}
}

func TestWebIdentity(t *testing.T) {
	r := newRig(t)
	tokFile := filepath.Join(r.tmpDir, "token")
	os.WriteFile(tokFile, []byte(r.jwt(t, "system:serviceaccount:ns:app")), 0o600)
	c, err := r.src.Retrieve(context.Background(), agent.Request{RoleARN: role("web"), SessionName: "pod", WebIdentityTokenFile: tokFile})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.rec.actions()[0].Get("Action"); got != "AssumeRoleWithWebIdentity" {
		t.Fatalf("action %s", got)
	}
	if arn := r.callerIdentity(t, c); arn != "arn:aws:sts::"+acct+":assumed-role/web/pod" {
		t.Fatalf("identity %s", arn)
	}
	// The file is re-read on every call: a rotated token for another subject is refused.
	os.WriteFile(tokFile, []byte(r.jwt(t, "system:serviceaccount:ns:intruder")), 0o600)
	_, err = r.src.Retrieve(context.Background(), agent.Request{RoleARN: role("web"), SessionName: "pod", WebIdentityTokenFile: tokFile})
	var se *agent.SourceError
	if !errors.As(err, &se) || se.Code != "AccessDenied" || se.Retryable {
		t.Fatalf("rotated token of another subject: %v", err)
	}
}

func TestThrottlingRetriedInsideOneCall(t *testing.T) {
	r := newRig(t)
	r.rec.throttle = 2
	c, err := r.src.Retrieve(context.Background(), agent.Request{RoleARN: role("target"), SessionName: "sess", ExternalID: "ext-123"})
	if err != nil {
		t.Fatalf("throttling twice should be absorbed by the SDK's retryer: %v", err)
	}
	if n := len(r.rec.actions()); n != 3 {
		t.Fatalf("server saw %d attempts, want 3", n)
	}
	if c.AccessKeyID == "" {
		t.Fatal("no credentials")
	}
	// Throttling beyond the retryer's attempts is a retryable failure for the agent.
	r.rec.throttle = 10
	_, err = r.src.Retrieve(context.Background(), agent.Request{RoleARN: role("target"), SessionName: "sess", ExternalID: "ext-123"})
	var se *agent.SourceError
	if !errors.As(err, &se) || se.Code != "Throttling" || !se.Retryable {
		t.Fatalf("persistent throttling: %v", err)
	}
}

// TestRetryableIsTheSTSClientsCall: whether an STS error is worth another
// logical call is what the STS client's own retryer says (its standard
// throttle and transient codes, 5xx, and STS's IDPCommunicationError), not a
// hand list: ThrottledException and RequestThrottledException were missed.
func TestRetryableIsTheSTSClientsCall(t *testing.T) {
	for _, tc := range []struct {
		code      string
		status    int
		retryable bool
	}{
		{"Throttling", 400, true},
		{"ThrottledException", 400, true},
		{"RequestThrottledException", 400, true},
		{"IDPCommunicationError", 400, true},
		{"InternalFailure", 500, true},
		{"ServiceUnavailable", 503, true},
		{"AccessDenied", 403, false},
		{"ValidationError", 400, false},
		{"ExpiredTokenException", 400, false},
	} {
		t.Run(tc.code, func(t *testing.T) {
			r := newRig(t)
			r.rec.code, r.rec.status, r.rec.throttle = tc.code, tc.status, 100
			_, err := r.src.Retrieve(context.Background(), agent.Request{RoleARN: role("target"), SessionName: "sess", ExternalID: "ext-123"})
			var se *agent.SourceError
			if !errors.As(err, &se) || se.Code != tc.code || se.Retryable != tc.retryable {
				t.Fatalf("got %v (retryable %v), want %s retryable=%v", err, se != nil && se.Retryable, tc.code, tc.retryable)
			}
		})
	}
}

func TestAccessDeniedNotRetriedAndReachesCaller(t *testing.T) {
	r := newRig(t)
	_, err := r.src.Retrieve(context.Background(), agent.Request{RoleARN: role("denied"), SessionName: "sess"})
	var se *agent.SourceError
	if !errors.As(err, &se) || se.Code != "AccessDenied" || se.Retryable {
		t.Fatalf("got %v, want a final AccessDenied", err)
	}
	if !strings.Contains(se.Message, "not authorized to perform: sts:AssumeRole") {
		t.Fatalf("STS's message should reach the caller: %q", se.Message)
	}
	if n := len(r.rec.actions()); n != 1 {
		t.Fatalf("access denied was retried: %d attempts", n)
	}
	// Wrong external id: also final.
	_, err = r.src.Retrieve(context.Background(), agent.Request{RoleARN: role("target"), SessionName: "sess", ExternalID: "wrong"})
	if !errors.As(err, &se) || se.Code != "AccessDenied" || se.Retryable {
		t.Fatalf("wrong external id: %v", err)
	}
}

func TestNeverSourcesFromItself(t *testing.T) {
	own := []string{"127.0.0.1:8169", "169.254.170.2:80"}
	env := map[string]string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "http://localhost:8169/role/x",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/creds",
		"AWS_EC2_METADATA_SERVICE_ENDPOINT":      "http://127.0.0.1:8169",
	}
	got := SelfReferencingEnv(own, func(k string) string { return env[k] })
	for _, want := range []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_EC2_METADATA_SERVICE_ENDPOINT"} {
		found := false
		for _, g := range got {
			found = found || g == want
		}
		if !found {
			t.Errorf("%s pointing at the sidecar is not flagged (%v)", want, got)
		}
	}
	// Elsewhere is fine.
	env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = "http://127.0.0.1:9999/creds"
	env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:9998"
	if got := SelfReferencingEnv([]string{"127.0.0.1:8169"}, func(k string) string { return env[k] }); len(got) != 0 {
		t.Errorf("flagged %v", got)
	}
	// New refuses to start while such a variable is set.
	_, err := New(context.Background(), Options{Region: "us-east-1", OwnListeners: own, Getenv: func(k string) string { return env[k] }})
	if err == nil || !strings.Contains(err.Error(), "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
		t.Fatalf("New: %v", err)
	}
}
