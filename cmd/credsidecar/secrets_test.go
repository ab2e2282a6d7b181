package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const (
	leakToken      = "tok-LEAK-0f9e8d7c6b5a4f3e"
	leakUserKey    = "AKIALEAKLEAKLEAKLEAK"
	leakUserSecret = "userSecretLEAK/0123456789abcdefghijklmn"
)

// TestNoSecretInAnyLog drives every log path — issue, refresh, refusals of
// every kind, a failing source, a bad reload, the embedded STS with good and
// bad signatures — at debug level with known secrets, and checks that no
// secret or token reaches the logs or the audit log, and that full key ids
// reach the audit log (for investigators, as CloudTrail records them) but
// never the logs (which carry only the last four characters).
func TestNoSecretInAnyLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	auditPath := filepath.Join(dir, "audit.jsonl")
	cfgText := fmt.Sprintf(`listen: ["127.0.0.1:0"]
admin_listen: "127.0.0.1:0"
audit_log: %q
sts:
  mode: local
  local:
    listen: "127.0.0.1:0"
    users:
      - {name: credsidecar, access_key_id: %s, secret_access_key: %q, policies: [{Version: 2012-10-17, Statement: [{Effect: Allow, Action: "sts:*", Resource: "*"}]}]}
roles:
  - {name: app, duration: 2m}
  - name: denied
    trust_policy: {Version: 2012-10-17, Statement: [{Effect: Allow, Principal: {AWS: "arn:aws:iam::000000000000:user/nobody"}, Action: "sts:AssumeRole"}]}
clients:
  - {name: holder, match: {token: %q}, roles: [app, denied]}
  - {name: local, match: {source_cidrs: ["127.0.0.1/32"]}, roles: [app]}
`, auditPath, leakUserKey, leakUserSecret, leakToken)
	os.WriteFile(path, []byte(cfgText), 0o644)

	logs := &syncBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(logs), zapcore.DebugLevel))
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [3]string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, path, log, serveHooks{ready: func(c []string, a, s string) { ready <- [3]string{c[0], a, s} }})
	}()
	var addrs [3]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	base, stsURL := "http://"+addrs[0], "http://"+addrs[2]

	secrets := []string{leakToken, leakUserSecret, leakUserKey}
	// keyIDs are the key ids the sidecar vended: in the audit log, in
	// full; in the logs, never.
	var keyIDs []string
	var mu sync.Mutex
	keep := func(body string) {
		var c struct{ AccessKeyId, SecretAccessKey, Token string }
		if json.Unmarshal([]byte(body), &c) == nil && c.AccessKeyId != "" {
			mu.Lock()
			secrets = append(secrets, c.SecretAccessKey, c.Token)
			keyIDs = append(keyIDs, c.AccessKeyId)
			mu.Unlock()
		}
	}
	// IMDSv2: token, role list, credentials, a token from the wrong place.
	req, _ := http.NewRequest(http.MethodPut, base+"/latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var tb bytes.Buffer
	tb.ReadFrom(resp.Body)
	resp.Body.Close()
	imdsTok := tb.String()
	secrets = append(secrets, imdsTok)
	_, body := get(t, base+"/latest/meta-data/iam/security-credentials/app", "X-aws-ec2-metadata-token", imdsTok)
	keep(body)
	get(t, base+"/latest/meta-data/iam/security-credentials/app", "X-aws-ec2-metadata-token", imdsTok+"x")
	// ECS: good token, bad token, a role whose trust denies (a failing source).
	_, body = get(t, base+"/role/app", "Authorization", leakToken)
	keep(body)
	get(t, base+"/role/app", "Authorization", leakToken+"-wrong")
	get(t, base+"/role/denied", "Authorization", leakToken)
	get(t, base+"/role/nope", "Authorization", leakToken)

	// The embedded STS: a good call, a bad signature, a call with the
	// issued session credentials.
	good := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(stsURL), Credentials: credentials.NewStaticCredentialsProvider(leakUserKey, leakUserSecret, "")})
	if _, err := good.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Fatalf("STS with the user's keys: %v", err)
	}
	bad := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(stsURL), RetryMaxAttempts: 1, Credentials: credentials.NewStaticCredentialsProvider(leakUserKey, leakUserSecret+"x", "")})
	bad.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	out, err := good.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::000000000000:role/app"), RoleSessionName: aws.String("direct")})
	if err != nil {
		t.Fatalf("AssumeRole: %v", err)
	}
	secrets = append(secrets, *out.Credentials.AccessKeyId, *out.Credentials.SecretAccessKey, *out.Credentials.SessionToken)
	sess := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(stsURL), Credentials: credentials.NewStaticCredentialsProvider(*out.Credentials.AccessKeyId, *out.Credentials.SecretAccessKey, *out.Credentials.SessionToken)})
	sess.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})

	// A reload that fails, one that succeeds (the token appears in both files).
	os.WriteFile(path, []byte(strings.Replace(cfgText, "roles:", "roles:\n  - {name: x, duration: nonsense}", 1)), 0o644)
	time.Sleep(300 * time.Millisecond)
	os.WriteFile(path, []byte(strings.Replace(cfgText, "duration: 2m", "duration: 3m", 1)), 0o644)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "config reloaded") {
		if time.Now().After(deadline) {
			t.Fatal("reload not logged")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, body = get(t, base+"/role/app", "Authorization", leakToken)
	keep(body)

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	auditBytes, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	all := logs.String()
	for _, want := range []string{"credentials issued", "key_id_last4", "credential request failed", "config reload failed"} {
		if !strings.Contains(all, want) {
			t.Errorf("log path not driven: no %q in the logs", want)
		}
	}
	for _, want := range []string{`"result":"success"`, `"status":401`, `"reason":"token_matches_no_client"`, `"reason":"imds_token_invalid"`,
		`"reason":"role_not_allowed"`, `"reason":"sts_rejected"`, `"caller_token":true`, `"assumed_role_arn":"arn:aws:sts::000000000000:assumed-role/app/`} {
		if !bytes.Contains(auditBytes, []byte(want)) {
			t.Errorf("audit log lacks %s:\n%s", want, auditBytes)
		}
	}
	if len(keyIDs) != 3 {
		t.Fatalf("%d vends kept, want 3", len(keyIDs))
	}
	for _, k := range keyIDs {
		if !bytes.Contains(auditBytes, []byte(`"access_key_id":"`+k+`"`)) {
			t.Errorf("the vended key id %s is not in the audit log", k)
		}
		if strings.Contains(all, k) {
			t.Errorf("a full key id (%.6s…) appears in the logs", k)
		}
		if !strings.Contains(all, `"key_id_last4":"`+k[len(k)-4:]+`"`) {
			t.Errorf("the logs lack the last four characters of %.6s…", k)
		}
	}
	for _, s := range secrets {
		if len(s) < 8 {
			t.Fatalf("suspiciously short secret %q", s)
		}
		if strings.Contains(all, s) {
			t.Errorf("a secret (%.6s…) appears in the logs", s)
		}
		if bytes.Contains(auditBytes, []byte(s)) {
			t.Errorf("a secret (%.6s…) appears in the audit log", s)
		}
	}
}
