package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// explainYAML is a local-mode account whose roles are refused for
// different reasons: a trust condition, a trust policy naming only the
// account (so the sidecar's own policies must allow), and a chain.
const explainYAML = `
sts:
  mode: local
  local:
    account_id: "000000000000"
    caller: credsidecar
    users:
      - name: credsidecar
        access_key_id: AKIAI44QH8DHBEXAMPLE
        secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        policies:
          - Version: "2012-10-17"
            Statement: [{ Sid: NotAdmin, Effect: Deny, Action: "sts:AssumeRole", Resource: "arn:aws:iam::000000000000:role/admin" }]
roles:
  - name: app
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - { Sid: Sidecar, Effect: Allow, Principal: { AWS: "arn:aws:iam::000000000000:user/credsidecar" }, Action: "sts:AssumeRole" }
    permission_policies:
      - Version: "2012-10-17"
        Statement: [{ Sid: Read, Effect: Allow, Action: "s3:GetObject", Resource: "arn:aws:s3:::demo/*" }]
  - name: partner
    external_id: wrong-id
    trust_policy:
      Version: "2012-10-17"
      Statement:
        - Sid: WithExternalID
          Effect: Allow
          Principal: { AWS: "arn:aws:iam::000000000000:user/credsidecar" }
          Action: "sts:AssumeRole"
          Condition: { StringEquals: { "sts:ExternalId": "partner-id" } }
  - name: admin
    trust_policy:
      Version: "2012-10-17"
      Statement: [{ Effect: Allow, Principal: { AWS: "000000000000" }, Action: "sts:AssumeRole" }]
  - name: chained
    via: app
    trust_policy:
      Version: "2012-10-17"
      Statement: [{ Sid: FromApp, Effect: Allow, Principal: { AWS: "arn:aws:iam::000000000000:role/app" }, Action: "sts:AssumeRole" }]
clients:
  - name: ci
    match: { token: ci-token }
    roles: [partner, app]
  - name: dev
    match: { uids: [1001], source_cidrs: ["127.0.0.0/8"] }
    roles: [app, admin, chained]
  - name: net
    match: { source_cidrs: ["10.0.0.0/8"] }
    roles: [app]
`

func TestExplainCommand(t *testing.T) {
	cfg := writeConfig(t, explainYAML)
	for _, tc := range []struct {
		name string
		args []string
		exit int
		want []string
	}{
		{"matched by uid and address", []string{"--uid", "1001"}, 0, []string{
			"caller: address 127.0.0.1, uid 1001, token none",
			"ci (line ", "): no: token: the caller presents no token",
			"dev (line ", "): matches",
			"role app: client dev may have it",
			`AssumeRole arn:aws:iam::000000000000:role/app as arn:aws:iam::000000000000:user/credsidecar (session "dev"): allowed`,
			`trust policy: allow by Statement[0] (Sid "Sidecar")`,
			"result: the caller would get credentials for role app"}},
		{"uid not listed", []string{"--uid", "1002", "--addr", "127.0.0.1"}, 1, []string{
			"dev (line ", "): no: uids: uid 1002 is not among [1001]",
			"net (line ", "): no: source_cidrs: address 127.0.0.1 is not in [10.0.0.0/8]",
			"refused by the sidecar: the caller matches no client of the trust config",
			"result: the caller would not get credentials"}},
		{"uid unknown", []string{"--uid", "none"}, 1, []string{"dev (line ", "): no: uids: the caller's uid is unknown"}},
		{"trust condition fails", []string{"--token", "ci-token", "--role", "partner"}, 1, []string{
			"token given (not shown)", "ci (line ", "): matches",
			`(session "ci"): refused`,
			"the STS answers: AccessDenied: User: arn:aws:iam::000000000000:user/credsidecar is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::000000000000:role/partner",
			"because: trust policy: no statement allows sts:AssumeRole (Statement[0] (Sid \"WithExternalID\"): condition StringEquals on sts:ExternalId is false)",
			`Statement[0] (Sid "WithExternalID") Allow: condition StringEquals sts:ExternalId ["partner-id"] is false (the request has ["wrong-id"])`,
			"result: the caller would not get credentials for role partner"}},
		{"identity policy denies", []string{"--uid", "1001", "--role", "admin"}, 1, []string{
			"trust policy: allow by Statement[0]",
			`identity policies: explicitDeny by Statement[0] (Sid "NotAdmin")`,
			`because: identity policies: explicit deny of sts:AssumeRole by Statement[0] (Sid "NotAdmin")`}},
		{"role the client may not have", []string{"--addr", "10.1.2.3", "--role", "admin"}, 1, []string{
			"net (line ", "): matches",
			`role admin: refused by the sidecar: client net may not have it (no such role for this caller: "admin")`}},
		{"unknown token", []string{"--token", "guess"}, 1, []string{"refused by the sidecar: the authorization token matches no client"}},
		{"chain", []string{"--uid", "1001", "--role", "chained"}, 0, []string{
			`AssumeRole arn:aws:iam::000000000000:role/app as arn:aws:iam::000000000000:user/credsidecar (session "dev"): allowed`,
			`AssumeRole arn:aws:iam::000000000000:role/chained as arn:aws:sts::000000000000:assumed-role/app/dev (session "dev"): allowed`,
			`trust policy: allow by Statement[0] (Sid "FromApp")`}},
		{"permission as simulate", []string{"--uid", "1001", "--action", "s3:GetObject", "--resource", "arn:aws:s3:::demo/a"}, 0, []string{
			`permission s3:GetObject on arn:aws:s3:::demo/a: allowed (permission policies: permission_policies[0] Statement[0] (Sid "Read"))`}},
		{"permission denied does not change the exit", []string{"--uid", "1001", "--action", "s3:PutObject", "--resource", "arn:aws:s3:::demo/a"}, 0, []string{
			"permission s3:PutObject on arn:aws:s3:::demo/a: implicitDeny (no statement of the permission policies allows it)"}},
		{"action without resource", []string{"--action", "s3:GetObject"}, 2, nil},
		{"token and token file", []string{"--token", "a", "--token-file", "b"}, 2, nil},
		{"bad address", []string{"--addr", "localhost"}, 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"explain", "--config", cfg}, tc.args...), &stdout, &stderr)
			if got := exitCode(err, &stderr); got != tc.exit {
				t.Fatalf("exit %d, want %d: %v\n%s", got, tc.exit, err, stdout.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
			if strings.Contains(stdout.String(), "ci-token") || strings.Contains(stdout.String(), "wJalrXUtnFEMI") {
				t.Errorf("output shows a secret:\n%s", stdout.String())
			}
		})
	}
}

func TestExplainJSON(t *testing.T) {
	cfg := writeConfig(t, explainYAML)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"explain", "--config", cfg, "--json", "--token", "ci-token", "--role", "partner"}, &stdout, &stderr)
	if got := exitCode(err, &stderr); got != 1 {
		t.Fatalf("exit %d, want 1: %v", got, err)
	}
	var rep struct {
		Caller  struct{ Token bool }
		Clients []struct {
			Client, Failed string
			Matched        bool
		}
		Client      string
		Role        string
		RoleAllowed bool   `json:"role_allowed"`
		STSMode     string `json:"sts_mode"`
		Trust       []struct {
			RoleARN       string `json:"role_arn"`
			Allowed       bool
			RefusedAction string `json:"refused_action"`
			Error, Reason string
			Steps         []struct {
				Set, Decision string
				Statements    []struct {
					Statement, Why string
					Applies        bool
				}
			}
		}
		Credentials bool
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout.String())
	}
	if !rep.Caller.Token || rep.Client != "ci" || rep.Role != "partner" || !rep.RoleAllowed || rep.STSMode != "local" || rep.Credentials {
		t.Errorf("report = %+v", rep)
	}
	if len(rep.Clients) != 1 || !rep.Clients[0].Matched {
		t.Errorf("clients = %+v", rep.Clients)
	}
	if len(rep.Trust) != 1 || rep.Trust[0].Allowed || rep.Trust[0].RefusedAction != "sts:AssumeRole" ||
		!strings.HasPrefix(rep.Trust[0].Error, "AccessDenied: User: arn:aws:iam::000000000000:user/credsidecar is not authorized") {
		t.Fatalf("trust = %+v", rep.Trust)
	}
	st := rep.Trust[0].Steps
	if len(st) != 1 || st[0].Set != "trust policy" || st[0].Decision != "implicitDeny" || len(st[0].Statements) != 1 ||
		st[0].Statements[0].Applies || !strings.Contains(st[0].Statements[0].Why, `StringEquals sts:ExternalId ["partner-id"] is false`) {
		t.Errorf("steps = %+v", st)
	}
	if strings.Contains(stdout.String(), "ci-token") {
		t.Error("the JSON shows the token")
	}
}

// TestCheckConfigAcceptsAWSExampleKey: the access key id of AWS's own
// documentation passes check-config (it is not base32).
func TestCheckConfigAcceptsAWSExampleKey(t *testing.T) {
	cfg := writeConfig(t, explainYAML)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"check-config", "--config", cfg}, &stdout, &stderr)
	if exitCode(err, &stderr) != 0 || !strings.Contains(stdout.String(), ": ok (4 roles, 3 clients") {
		t.Fatalf("check-config: %v\n%s%s", err, stdout.String(), stderr.String())
	}
}

// TestExplainOutOfSight: what explain cannot evaluate (AWS's trust policy
// in aws mode, a web identity token) is said, and the verdict is the
// sidecar's own.
func TestExplainOutOfSight(t *testing.T) {
	aws := writeConfig(t, `
sts: { mode: aws }
roles:
  - { name: app, arn: "arn:aws:iam::123456789012:role/app" }
clients:
  - { name: local, match: { source_cidrs: ["127.0.0.1/32"] }, roles: [app] }
`)
	web := writeConfig(t, `
sts: { mode: local }
roles:
  - name: web
    web_identity_token_file: /nonexistent/token
    trust_policy:
      Version: "2012-10-17"
      Statement: [{ Effect: Allow, Principal: { Federated: "arn:aws:iam::000000000000:oidc-provider/oidc.example.test" }, Action: "sts:AssumeRoleWithWebIdentity" }]
clients:
  - { name: local, match: { source_cidrs: ["127.0.0.1/32"] }, roles: [web] }
`)
	for _, tc := range []struct {
		name string
		args []string
		exit int
		want []string
	}{
		{"aws mode", []string{"--config", aws, "--action", "s3:GetObject", "--resource", "arn:aws:s3:::b/k"}, 0, []string{
			"role app: client local may have it",
			"trust policy: sts.mode is aws: AWS evaluates the role's trust policy",
			"permission s3:GetObject on arn:aws:s3:::b/k: cannot simulate: sts.mode is aws",
			"result: the caller would get credentials for role app"}},
		{"aws mode, no client", []string{"--config", aws, "--addr", "10.0.0.1"}, 1, []string{"refused by the sidecar: the caller matches no client"}},
		{"web identity", []string{"--config", web}, 0, []string{
			"role web: client local may have it",
			"trust policy: the role is assumed with a web identity token, which explain does not read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"explain"}, tc.args...), &stdout, &stderr)
			if got := exitCode(err, &stderr); got != tc.exit {
				t.Fatalf("exit %d, want %d: %v\n%s", got, tc.exit, err, stdout.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}
