package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/credsidecar/credsidecar/internal/awstest"
)

// TestMain lets the test binary stand in for the credsidecar binary: the
// credential_process test makes aws-sdk-go-v2 run it as `credsidecar creds`.
func TestMain(m *testing.M) {
	if os.Getenv("CREDSIDECAR_TEST_RUN_MAIN") == "1" {
		os.Exit(exitCode(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
	}
	os.Exit(m.Run())
}

func callerARN(t *testing.T, stsURL, akid, secret, token string) string {
	t.Helper()
	cl := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(stsURL), Credentials: credentials.NewStaticCredentialsProvider(akid, secret, token)})
	out, err := cl.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	return *out.Arn
}

// TestAWSModeEndToEnd runs two sidecars: A in local mode is "AWS STS"; B in
// aws mode uses A's STS endpoint with its own long-term keys from the
// environment (the SDK's default chain). B's credentials, fetched over its
// ECS endpoint, are then accepted by A in GetCallerIdentity: the whole chain
// is real HTTP and real SigV4.
func TestAWSModeEndToEnd(t *testing.T) {
	awstest.Isolate(t)
	dir := t.TempDir()
	const key, secret = "AKIASIDECARBBBBBBBBB", "sidecar-b-secret-0123456789"
	pathA := filepath.Join(dir, "a.yaml")
	os.WriteFile(pathA, []byte(fmt.Sprintf(`listen: ["127.0.0.1:0"]
admin_listen: "127.0.0.1:0"
sts:
  mode: local
  local:
    listen: "127.0.0.1:0"
    account_id: "111122223333"
    users:
      - {name: sidecar-b, access_key_id: %s, secret_access_key: %s}
roles:
  - name: app
    trust_policy: {Version: 2012-10-17, Statement: [{Effect: Allow, Principal: {AWS: "arn:aws:iam::111122223333:user/sidecar-b"}, Action: [sts:AssumeRole, sts:TagSession]}]}
  - name: chained
    trust_policy: {Version: 2012-10-17, Statement: [{Effect: Allow, Principal: {AWS: "arn:aws:iam::111122223333:role/app"}, Action: sts:AssumeRole}]}
    permission_policies: []
clients:
  - {name: nobody, match: {token: unused-token}, roles: [app]}
`, key, secret)), 0o644)
	a := startServe(t, pathA)

	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	pathB := filepath.Join(dir, "b.yaml")
	os.WriteFile(pathB, []byte(fmt.Sprintf(`listen: ["127.0.0.1:0"]
admin_listen: "127.0.0.1:0"
region: us-east-1
sts: {mode: aws, endpoint: %q}
roles:
  - {name: app, arn: "arn:aws:iam::111122223333:role/app", duration: 30m, tags: {team: blue}}
  - {name: chained, arn: "arn:aws:iam::111122223333:role/chained", via: app, duration: 15m}
clients:
  - {name: svc, match: {token: svc-token}, roles: [app, chained]}
`, a.sts)), 0o644)
	b := startServe(t, pathB)
	for role, want := range map[string]string{
		"app":     "arn:aws:sts::111122223333:assumed-role/app/svc",
		"chained": "arn:aws:sts::111122223333:assumed-role/chained/svc",
	} {
		code, body := get(t, b.base+"/role/"+role, "Authorization", "svc-token")
		var c struct{ AccessKeyId, SecretAccessKey, Token, RoleArn string }
		if code != 200 || json.Unmarshal([]byte(body), &c) != nil {
			t.Fatalf("aws-mode sidecar, role %s: %d %s", role, code, body)
		}
		if got := callerARN(t, a.sts, c.AccessKeyId, c.SecretAccessKey, c.Token); got != want {
			t.Fatalf("role %s: GetCallerIdentity = %s, want %s", role, got, want)
		}
	}
}

// TestCredentialProcessProfile: aws-sdk-go-v2 with a shared-config profile
// whose credential_process is `credsidecar creds`, against a running
// sidecar; the key the SDK gets is the sidecar's, and the local STS accepts it.
func TestCredentialProcessProfile(t *testing.T) {
	awstest.Isolate(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(serveYAML("us-east-1", false)), 0o644)
	srv := startServe(t, cfgPath)
	// creds reads the first listen address from the config: point a copy
	// of it at the port the sidecar really bound.
	clientCfg := filepath.Join(dir, "client.yaml")
	os.WriteFile(clientCfg, []byte(strings.Replace(serveYAML("us-east-1", false), `listen: ["127.0.0.1:0"]`,
		fmt.Sprintf("listen: [%q]", strings.TrimPrefix(srv.base, "http://")), 1)), 0o644)
	tokFile := filepath.Join(dir, "token")
	os.WriteFile(tokFile, []byte("loader-token"), 0o600)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	awsCfg := filepath.Join(dir, "aws-config")
	os.WriteFile(awsCfg, []byte(fmt.Sprintf("[profile app]\ncredential_process = %s creds --role app --config %s --token-file %s --log-level error\nregion = us-east-1\n", exe, clientCfg, tokFile)), 0o600)
	t.Setenv("AWS_CONFIG_FILE", awsCfg)
	t.Setenv("CREDSIDECAR_TEST_RUN_MAIN", "1")
	cfg, err := awsconfig.LoadDefaultConfig(context.Background(), awsconfig.WithSharedConfigProfile("app"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatalf("credential_process through the SDK: %v", err)
	}
	if got.Source != "ProcessProvider" || !strings.HasPrefix(got.AccessKeyID, "ASIA") || !got.CanExpire {
		t.Fatalf("credentials %+v", got)
	}
	code, body := get(t, srv.base+"/role/app", "Authorization", "loader-token")
	if code != 200 || !strings.Contains(body, got.AccessKeyID) {
		t.Fatalf("the sidecar serves another key than the SDK got: %d %s", code, body)
	}
	if arn := callerARN(t, srv.sts, got.AccessKeyID, got.SecretAccessKey, got.SessionToken); !strings.HasSuffix(arn, ":assumed-role/app/loader") {
		t.Fatalf("GetCallerIdentity = %s", arn)
	}
}

// TestExecCommand: exec hands CMD the sidecar's full URI and token file,
// removes what would win over them in an SDK's chain, and passes CMD's exit
// status through. It mints nothing itself.
func TestExecCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfgPath, []byte(`listen: ["127.0.0.1:8169"]
roles: [{name: app}]
clients: [{name: c, match: {token: t0k3n}, roles: [app]}]
`), 0o644)
	tok := filepath.Join(dir, "tok")
	os.WriteFile(tok, []byte("t0k3n"), 0o600)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIASTATICSHOULDGO00")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/should-go")
	var out, errb strings.Builder
	err := run(context.Background(), []string{"exec", "--config", cfgPath, "--role", "app", "--token-file", tok, "--",
		"sh", "-c", `echo "$AWS_CONTAINER_CREDENTIALS_FULL_URI|$AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE|${AWS_ACCESS_KEY_ID-unset}|${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI-unset}"; exit 7`}, &out, &errb)
	if code := exitCode(err, &errb); code != 7 {
		t.Fatalf("exit code %d, want the command's 7 (%v, %s)", code, err, errb.String())
	}
	want := "http://127.0.0.1:8169/role/app|" + tok + "|unset|unset\n"
	if out.String() != want {
		t.Fatalf("child saw %q, want %q", out.String(), want)
	}
	if code := exitCode(run(context.Background(), []string{"exec", "--config", cfgPath, "--", "true"}, &out, &errb), &errb); code != 2 {
		t.Fatalf("exec without --role: exit %d, want 2", code)
	}
}

// creds needs only the listen address: a config whose secrets the calling
// user cannot resolve (env: unset here) still works.
func TestCredsWithUnresolvableSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte(`listen: ["127.0.0.1:1"]
roles: [{name: app}]
clients: [{name: c, match: {token: {env: CREDSIDECAR_TEST_UNSET_TOKEN}}, roles: [app]}]
`), 0o644)
	u, err := sidecarURL(path, "app")
	if err != nil || u != "http://127.0.0.1:1/role/app" {
		t.Fatalf("sidecarURL = %q, %v", u, err)
	}
}
