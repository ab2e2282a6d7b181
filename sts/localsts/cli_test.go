package localsts

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAWSCLI runs the AWS CLI (Debian's awscli, i.e. botocore) against the
// server. It is skipped when aws is not installed, except in CI, where the
// CLI is part of the toolchain and its absence is a failure.
func TestAWSCLI(t *testing.T) {
	// Debian's package installs /usr/bin/aws; a different aws earlier on
	// PATH (pyenv, pip) is tested too.
	var clis []string
	if p, err := exec.LookPath("aws"); err == nil {
		clis = append(clis, p)
	}
	if st, err := os.Stat("/usr/bin/aws"); err == nil && !st.IsDir() && (len(clis) == 0 || clis[0] != "/usr/bin/aws") {
		clis = append(clis, "/usr/bin/aws")
	}
	if len(clis) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the AWS CLI (aws) is not on PATH, and CI=true requires it: apt-get install -y awscli")
		}
		t.Skip("the AWS CLI (aws) is not on PATH; install Debian's awscli to run this test")
	}
	f := newFixture(t, nil)
	for _, path := range clis {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			testCLI(t, f, path)
		})
	}
}

func testCLI(t *testing.T, f *fixture, path string) {
	run := func(t *testing.T, akid, secret, token string, args ...string) map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, path, append(args, "--endpoint-url", f.server.URL, "--output", "json")...)
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") {
				env = append(env, kv)
			}
		}
		env = append(env, "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret,
			"AWS_DEFAULT_REGION="+testRegion, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
			"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=")
		if token != "" {
			env = append(env, "AWS_SESSION_TOKEN="+token)
		}
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		var doc map[string]any
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatalf("aws output %q: %v", out, err)
		}
		return doc
	}
	id := run(t, aliceKey, aliceSecret, "", "sts", "get-caller-identity")
	if id["Arn"] != "arn:aws:iam::123456789012:user/alice" || id["Account"] != testAccount {
		t.Errorf("get-caller-identity: %v", id)
	}
	out := run(t, aliceKey, aliceSecret, "", "sts", "assume-role", "--role-arn", roleARN("direct"),
		"--role-session-name", "cli-session", "--duration-seconds", "900",
		"--tags", "Key=team,Value=blue", "--transitive-tag-keys", "team")
	creds, _ := out["Credentials"].(map[string]any)
	user, _ := out["AssumedRoleUser"].(map[string]any)
	if user["Arn"] != assumedARN("direct", "cli-session") || creds == nil {
		t.Fatalf("assume-role: %v", out)
	}
	id = run(t, creds["AccessKeyId"].(string), creds["SecretAccessKey"].(string), creds["SessionToken"].(string), "sts", "get-caller-identity")
	if id["Arn"] != assumedARN("direct", "cli-session") {
		t.Errorf("get-caller-identity with role credentials: %v", id)
	}
}
