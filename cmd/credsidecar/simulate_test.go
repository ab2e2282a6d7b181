package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const simulateYAML = `
sts: { mode: local, local: { account_id: "000000000000" } }
roles:
  - name: app
    arn: arn:aws:iam::000000000000:role/app
    permission_policies:
      - Version: "2012-10-17"
        Statement:
          - { Sid: Read, Effect: Allow, Action: "s3:GetObject", Resource: "arn:aws:s3:::demo/*" }
          - { Sid: NoSecrets, Effect: Deny, Action: "s3:*", Resource: "arn:aws:s3:::demo/secret/*" }
    session_policy:
      Version: "2012-10-17"
      Statement: [{ Sid: PublicOnly, Effect: Allow, Action: "s3:*", Resource: "arn:aws:s3:::demo/public/*" }]
  - name: plain
    arn: arn:aws:iam::000000000000:role/plain
    permission_policies:
      - Version: "2012-10-17"
        Statement: [{ Effect: Allow, Action: "s3:GetObject", Resource: "*" }]
clients:
  - name: local
    match: { source_cidrs: ["127.0.0.1/32"] }
    roles: [app]
`

func TestSimulateCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(simulateYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	wide := filepath.Join(dir, "wide.json")
	os.WriteFile(wide, []byte(`{"Version":"2012-10-17","Statement":[{"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"}]}`), 0o600)
	for _, tc := range []struct {
		name    string
		args    []string
		exit    int
		outWant []string
	}{
		{"allowed", []string{"--role", "app", "--action", "s3:GetObject", "--resource", "arn:aws:s3:::demo/public/a"}, 0,
			[]string{"allowed: s3:GetObject", `permission_policies[0] Statement[0] (Sid "Read")`, `session_policy Statement[0] (Sid "PublicOnly")`}},
		{"session policy narrows", []string{"--role", "app", "--action", "s3:GetObject", "--resource", "arn:aws:s3:::demo/private/a"}, 1,
			[]string{"implicitDeny", "no statement of the session policies allows it"}},
		{"session policy file replaces", []string{"--role", "app", "--session-policy", wide, "--action", "s3:GetObject", "--resource", "arn:aws:s3:::demo/private/a"}, 0,
			[]string{"allowed", `session_policy Statement[0] (Sid "All")`}},
		{"explicit deny", []string{"--role", "app", "--session-policy", wide, "--action", "s3:GetObject", "--resource", "arn:aws:s3:::demo/secret/a"}, 1,
			[]string{"explicitDeny", `denied by permission policies: permission_policies[0] Statement[1] (Sid "NoSecrets")`}},
		{"not granted", []string{"--role", "plain", "--action", "s3:PutObject", "--resource", "arn:aws:s3:::demo/a"}, 1,
			[]string{"implicitDeny", "no statement of the permission policies allows it"}},
		{"unknown role", []string{"--role", "nope", "--action", "s3:GetObject", "--resource", "*"}, 1, nil},
		{"missing flags", []string{"--role", "app"}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"simulate", "--config", cfg}, tc.args...)
			err := run(context.Background(), args, &stdout, &stderr)
			if got := exitCode(err, &stderr); got != tc.exit {
				t.Fatalf("exit %d, want %d: %v\n%s", got, tc.exit, err, stdout.String())
			}
			for _, w := range tc.outWant {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
			if tc.exit == 1 && tc.outWant != nil && !isDenied(err) {
				t.Errorf("error %v is not a denial", err)
			}
		})
	}
}
