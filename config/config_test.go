package config_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/config"
)

const examplePath = "../config.example.yaml"

// checkEqual fails the test with both values when they differ. (go-cmp is
// only in go.sum, not required by go.mod, so the tests use reflect.)
func checkEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got: %#v\nwant: %#v", what, got, want)
	}
}

// problems returns the problems of a *config.Error, failing on any other error.
func problems(t *testing.T, err error) []config.Problem {
	t.Helper()
	if err == nil {
		t.Fatal("got no error, want problems")
	}
	var ce *config.Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *config.Error", err, err)
	}
	if len(ce.Problems) == 0 {
		t.Fatalf("*config.Error without problems: %v", err)
	}
	return ce.Problems
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestExample(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := config.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	loaded, err := config.Load(examplePath)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, tc := range []struct {
		name string
		cfg  *config.Config
		path string
		// token is the billing client's resolved token: Load resolves, Parse does not.
		token string
	}{
		{name: "Parse", cfg: parsed, path: "", token: ""},
		{name: "Load", cfg: loaded, path: examplePath, token: "demo-billing-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			checkEqual(t, "Path", c.Path, tc.path)
			checkEqual(t, "Warnings", c.Warnings, []string(nil))
			checkEqual(t, "Listen", c.Listen, []string{"127.0.0.1:8169"})
			checkEqual(t, "AdminListen", c.AdminListen, "127.0.0.1:8170")
			checkEqual(t, "Region", c.Region, "us-east-1")
			checkEqual(t, "IMDS", c.IMDS, config.IMDS{Tokens: config.TokensRequired})
			checkEqual(t, "Cache", c.Cache, config.Cache{MaxEntries: 10000, ErrorTTL: config.Duration(5 * time.Second), WarmMax: 64})
			checkEqual(t, "STS.Mode", c.STS.Mode, config.ModeLocal)
			checkEqual(t, "STS.MaxQPS", c.STS.MaxQPS, 10.0)
			checkEqual(t, "STS.Local", c.STS.Local, config.Local{
				Listen:    "127.0.0.1:8171",
				AccountID: "000000000000",
				Caller:    "credsidecar",
			})

			type role struct {
				name, arn, session string
				duration           time.Duration
				line               int
				tags               map[string]string
				perms              int
			}
			var roles []role
			for _, r := range c.Roles {
				if r.SessionTemplate == nil {
					t.Errorf("role %s: SessionTemplate not set", r.Name)
				}
				if r.TrustPolicy == nil {
					t.Errorf("role %s: no trust policy", r.Name)
				}
				roles = append(roles, role{r.Name, r.ARN, r.SessionName, r.Duration.D(), r.Line, r.Tags, len(r.PermissionPolicies)})
			}
			// Lines are found in the file, so editing its comments does not
			// break the test, while a wrong line still does.
			example, err := os.ReadFile(examplePath)
			if err != nil {
				t.Fatal(err)
			}
			checkEqual(t, "roles", roles, []role{
				{"app", "arn:aws:iam::000000000000:role/app", "credsidecar-{{.Client}}", time.Hour, lineOf(t, example, "  - name: app"), nil, 1},
				{"reports", "arn:aws:iam::000000000000:role/reports", "{{.Client}}-reports", 30 * time.Minute, lineOf(t, example, "  - name: reports"), map[string]string{"team": "analytics"}, 1},
			})
			if r, ok := c.RoleByName("reports"); !ok || r != &c.Roles[1] {
				t.Errorf("RoleByName(reports) = %p, %v; want &Roles[1]", r, ok)
			}
			if _, ok := c.RoleByName("nope"); ok {
				t.Error("RoleByName(nope) found a role")
			}

			checkEqual(t, "clients", len(c.Clients), 2)
			billing, dev := c.Clients[0], c.Clients[1]
			checkEqual(t, "billing", []any{billing.Name, billing.Roles, billing.Line}, []any{"billing", []string{"reports", "app"}, lineOf(t, example, "  - name: billing")})
			checkEqual(t, "billing token", *billing.Match.Token, config.Secret{Literal: "demo-billing-token", Line: lineOf(t, example, "      token: demo-billing-token"), Value: tc.token})
			checkEqual(t, "local-dev", []any{dev.Name, dev.Roles, dev.Line, dev.Match.Token}, []any{"local-dev", []string{"app"}, lineOf(t, example, "  - name: local-dev"), (*config.Secret)(nil)})
			checkEqual(t, "local-dev cidrs", dev.Match.SourceCIDRs, []config.Prefix{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}})
		})
	}
}

func TestDefaults(t *testing.T) {
	tmpl := func(c *config.Config) {
		// Templates are checked for presence, then left out of the comparison.
		for i := range c.Roles {
			if c.Roles[i].SessionTemplate == nil {
				t.Errorf("role %s: SessionTemplate not set", c.Roles[i].Name)
			}
			c.Roles[i].SessionTemplate = nil
		}
	}
	defaults := func(edit func(*config.Config)) *config.Config {
		c := &config.Config{
			Listen:            []string{config.DefaultListen},
			AdminListen:       "127.0.0.1:8170",
			Region:            "us-east-1",
			IMDS:              config.IMDS{Tokens: "required"},
			InsecureFileModes: config.InsecureFileModesRefuse,
			Cache:             config.Cache{MaxEntries: 10000, ErrorTTL: config.Duration(5 * time.Second), WarmMax: config.DefaultWarmMax},
			STS: config.STS{Mode: "local", MaxQPS: 10, Local: config.Local{
				Listen: "127.0.0.1:8171", AccountID: "000000000000", Caller: "credsidecar",
			}},
		}
		if edit != nil {
			edit(c)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		yaml string
		want *config.Config
	}{
		{name: "empty mapping", yaml: "{}\n", want: defaults(nil)},
		{name: "only a comment and a region", yaml: "# mine\nregion: eu-west-1\n", want: defaults(func(c *config.Config) { c.Region = "eu-west-1" })},
		{
			name: "minimal role",
			yaml: "roles:\n  - name: app\n",
			want: defaults(func(c *config.Config) {
				c.Roles = []config.Role{{
					Name: "app", ARN: "arn:aws:iam::000000000000:role/app",
					Duration: config.Duration(time.Hour), SessionName: "{{.Client}}", Line: 2,
				}}
			}),
		},
		{
			name: "role ARN follows account_id",
			yaml: "sts: {local: {account_id: \"012345678901\"}}\nroles: [{name: app}]\n",
			want: defaults(func(c *config.Config) {
				c.STS.Local.AccountID = "012345678901"
				c.Roles = []config.Role{{
					Name: "app", ARN: "arn:aws:iam::012345678901:role/app",
					Duration: config.Duration(time.Hour), SessionName: "{{.Client}}", Line: 2,
				}}
			}),
		},
		{
			name: "unquoted account id keeps its leading zero",
			yaml: "sts:\n  local:\n    account_id: 012345678901\n",
			want: defaults(func(c *config.Config) { c.STS.Local.AccountID = "012345678901" }),
		},
		{
			name: "minimal client",
			yaml: "roles: [{name: app}]\nclients:\n  - {name: me, match: {uids: [1000]}, roles: [app]}\n",
			want: defaults(func(c *config.Config) {
				c.Roles = []config.Role{{
					Name: "app", ARN: "arn:aws:iam::000000000000:role/app",
					Duration: config.Duration(time.Hour), SessionName: "{{.Client}}", Line: 1,
				}}
				c.Clients = []config.Client{{Name: "me", Match: config.Match{UIDs: []uint32{1000}}, Roles: []string{"app"}, Line: 3}}
			}),
		},
		{
			name: "aws mode keeps the given ARN and duration",
			yaml: "sts: {mode: aws}\nroles:\n  - {name: app, arn: \"arn:aws:iam::123456789012:role/x\", duration: 15m}\n",
			want: defaults(func(c *config.Config) {
				c.STS.Mode = "aws"
				c.Roles = []config.Role{{
					Name: "app", ARN: "arn:aws:iam::123456789012:role/x",
					Duration: config.Duration(15 * time.Minute), SessionName: "{{.Client}}", Line: 3,
				}}
				c.Warnings = []string{`line 3: role "app": duration 15m0s is under 30m0s, so callers will hold credentials that SDKs consider stale (under 15m0s left) part of the time`}
			}),
		},
		{
			name: "rate limit burst defaults to rps+1",
			yaml: "limits: {per_client_rps: 2.5}\n",
			want: defaults(func(c *config.Config) { c.Limits = config.Limits{PerClientRPS: 2.5, Burst: 3} }),
		},
		{
			name: "explicit values are kept",
			yaml: "listen: [\"169.254.169.254:80\", \"[fd00:ec2::254]:80\"]\nadmin_listen: \"localhost:9000\"\n" +
				"imds: {tokens: optional, hop_limit: 2}\ncache: {max_entries: 5, error_ttl: 1s, warm_max: 0}\nsts: {max_qps: 0.5}\n",
			want: defaults(func(c *config.Config) {
				c.Listen = []string{"169.254.169.254:80", "[fd00:ec2::254]:80"}
				c.AdminListen = "localhost:9000"
				c.IMDS = config.IMDS{Tokens: "optional", HopLimit: 2}
				c.Cache = config.Cache{MaxEntries: 5, ErrorTTL: config.Duration(time.Second)} // warm_max: 0 written out is kept
				c.STS.MaxQPS = 0.5
			}),
		},
		{
			name: "public listen when allowed",
			yaml: "allow_public_listen: true\nlisten: [\"0.0.0.0:8169\"]\n",
			want: defaults(func(c *config.Config) { c.AllowPublicListen = true; c.Listen = []string{"0.0.0.0:8169"} }),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := config.Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tmpl(got)
			checkEqual(t, "config", got, tc.want)
		})
	}
}

// TestPolicyScalars checks that policies keep the text of their YAML
// scalars, whichever field they are in and whichever form they take.
func TestPolicyScalars(t *testing.T) {
	// policyOf picks the policy under test out of a parsed config.
	type pick func(*config.Config) config.Policy
	trust := func(c *config.Config) config.Policy { return *c.Roles[0].TrustPolicy }
	session := func(c *config.Config) config.Policy { return *c.Roles[0].SessionPolicy }
	perm := func(c *config.Config) config.Policy { return c.Roles[0].PermissionPolicies[0] }
	user := func(c *config.Config) config.Policy { return c.STS.Local.Users[0].Policies[0] }
	managed := func(c *config.Config) config.Policy { return c.STS.Local.ManagedPolicies["readonly"] }

	for _, tc := range []struct {
		name string
		yaml string
		pick pick
		line int
		want map[string]any
		// verbatim, when set, is the exact Policy.JSON expected.
		verbatim string
	}{
		{
			name: "unquoted version, account id and bool in a trust policy",
			yaml: `roles:
  - name: app
    trust_policy:
      Version: 2012-10-17
      Statement:
        - Effect: Allow
          Principal: {AWS: 012345678901}
          Action: sts:AssumeRole
          Condition:
            StringEquals: {aws:SourceAccount: 012345678901}
            Bool: {aws:SecureTransport: true}
            NumericLessThan: {aws:MultiFactorAuthAge: 3600}
`,
			pick: trust,
			line: 4,
			want: map[string]any{
				"Version": "2012-10-17",
				"Statement": []any{map[string]any{
					"Effect":    "Allow",
					"Principal": map[string]any{"AWS": "012345678901"},
					"Action":    "sts:AssumeRole",
					"Condition": map[string]any{
						"StringEquals":    map[string]any{"aws:SourceAccount": "012345678901"},
						"Bool":            map[string]any{"aws:SecureTransport": "true"},
						"NumericLessThan": map[string]any{"aws:MultiFactorAuthAge": "3600"},
					},
				}},
			},
		},
		{
			name: "lists, octal-looking and float-looking scalars in a session policy",
			yaml: `roles:
  - name: app
    session_policy:
      Version: 2012-10-17
      Statement:
        - Effect: Deny
          Action: ["s3:*", ec2:Describe*]
          Resource: "*"
          Condition:
            StringEquals: {aws:PrincipalAccount: [012345678901, 000000000000], s3:prefix: 1.10}
            "Null": {aws:TokenIssueTime: false}
`,
			pick: session,
			line: 4,
			want: map[string]any{
				"Version": "2012-10-17",
				"Statement": []any{map[string]any{
					"Effect":   "Deny",
					"Action":   []any{"s3:*", "ec2:Describe*"},
					"Resource": "*",
					"Condition": map[string]any{
						"StringEquals": map[string]any{"aws:PrincipalAccount": []any{"012345678901", "000000000000"}, "s3:prefix": "1.10"},
						"Null":         map[string]any{"aws:TokenIssueTime": "false"},
					},
				}},
			},
		},
		{
			name: "permission policy in a list, with an anchor reused",
			yaml: `roles:
  - name: app
    permission_policies:
      - Version: 2012-10-17
        Statement:
          - &read {Effect: Allow, Action: s3:GetObject, Resource: "arn:aws:s3:::b/*"}
          - *read
`,
			pick: perm,
			line: 4,
			want: map[string]any{
				"Version": "2012-10-17",
				"Statement": []any{
					map[string]any{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
					map[string]any{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*"},
				},
			},
		},
		{
			name: "user policy",
			yaml: `sts:
  local:
    users:
      - name: ci
        access_key_id: AKIAIOSFODNN7EXAMPLE
        secret_access_key: ci-secret
        policies:
          - {Version: 2012-10-17, Statement: [{Effect: Allow, Action: "sts:AssumeRole", Resource: "*"}]}
`,
			pick: user,
			line: 8,
			want: map[string]any{
				"Version":   "2012-10-17",
				"Statement": []any{map[string]any{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}},
			},
		},
		{
			name: "managed policy",
			yaml: `sts:
  local:
    managed_policies:
      readonly:
        Version: 2012-10-17
        Statement: [{Effect: Allow, Action: "s3:Get*", Resource: "*"}]
`,
			pick: managed,
			line: 5,
			want: map[string]any{
				"Version":   "2012-10-17",
				"Statement": []any{map[string]any{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}},
			},
		},
		{
			name: "JSON string kept verbatim",
			yaml: `roles:
  - name: app
    session_policy: '{"Version": "2012-10-17",   "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": true}}}]}'
`,
			pick:     session,
			line:     3,
			verbatim: `{"Version": "2012-10-17",   "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": true}}}]}`,
			want: map[string]any{
				"Version": "2012-10-17",
				"Statement": []any{map[string]any{
					"Effect": "Allow", "Action": "s3:*", "Resource": "*",
					// A JSON document keeps its own types: here a JSON bool.
					"Condition": map[string]any{"Bool": map[string]any{"aws:SecureTransport": true}},
				}},
			},
		},
		{
			name: "JSON block scalar kept verbatim",
			yaml: `roles:
  - name: app
    trust_policy: |
      {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "000000000000"}, "Action": "sts:AssumeRole"}]
      }
`,
			pick:     trust,
			line:     3,
			verbatim: "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"000000000000\"}, \"Action\": \"sts:AssumeRole\"}]\n}\n",
			want: map[string]any{
				"Version": "2012-10-17",
				"Statement": []any{map[string]any{
					"Effect": "Allow", "Principal": map[string]any{"AWS": "000000000000"}, "Action": "sts:AssumeRole",
				}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			pol := tc.pick(c)
			if tc.verbatim != "" && pol.JSON != tc.verbatim {
				t.Errorf("Policy.JSON not verbatim:\n got: %s\nwant: %s", pol.JSON, tc.verbatim)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(pol.JSON), &got); err != nil {
				t.Fatalf("Policy.JSON %s: %v", pol.JSON, err)
			}
			checkEqual(t, "policy", got, tc.want)
			checkEqual(t, "Policy.Line", pol.Line, tc.line)
		})
	}
}

// want is one expected problem: its line and a substring of its message.
type want struct {
	line int
	msg  string
}

func checkProblems(t *testing.T, got []config.Problem, wants []want) {
	t.Helper()
	if len(got) != len(wants) {
		t.Fatalf("got %d problems %v, want %d: %v", len(got), got, len(wants), wants)
	}
	for i, w := range wants {
		if got[i].Line != w.line || !strings.Contains(got[i].Msg, w.msg) {
			t.Errorf("problem %d = %q (line %d), want line %d containing %q", i, got[i].Msg, got[i].Line, w.line, w.msg)
		}
	}
}

// TestInvalid pairs every testdata/invalid-*.yaml with its exact problems.
func TestInvalid(t *testing.T) {
	cases := map[string][]want{
		"admin-listen-public":   {{2, `admin_listen: 10.0.0.5:8170 is neither loopback nor link-local`}},
		"alias-bomb":            {{2, "expands to more than"}},
		"chain-duration":        {{6, `role "chained": a chained session (via) lasts at most 1h0m0s`}},
		"cidr":                  {{7, `invalid CIDR "10.0.0.300/32"`}},
		"client-empty-match":    {{6, `client "anyone": match needs at least one of token, source_cidrs, uids`}},
		"client-unknown-role":   {{7, `client "billing": unknown role "reports"`}},
		"duration-long":         {{4, `duration 13h0m0s is outside 1m0s..12h0m0s`}},
		"duration-short-aws":    {{6, `duration 10s is outside 15m0s..12h0m0s`}},
		"duration-short-local":  {{4, `duration 30s is outside 1m0s..12h0m0s`}},
		"duration-syntax":       {{4, `invalid duration "1hour"`}},
		"empty":                 {{0, "config is empty"}},
		"imds-tokens":           {{3, `imds.tokens must be "required" or "optional", not "sometimes"`}},
		"listen-public":         {{4, `listen: 0.0.0.0:8169 is neither loopback nor link-local`}},
		"max-qps-nan":           {{3, "sts.max_qps must be a positive number"}},
		"not-mapping":           {{2, "config must be a mapping"}},
		"only-comments":         {{0, "config is empty"}},
		"policy-no-statement":   {{5, "Statement: required element is missing"}},
		"policy-not-json":       {{4, "policy string is not a JSON object"}},
		"role-arn-account":      {{6, `role "app": local mode emulates account 000000000000, not 123456789012`}},
		"role-duplicate":        {{5, `role "app" is defined twice`}},
		"scalar":                {{1, "config must be a mapping"}},
		"secret-empty":          {{7, "secret is empty"}},
		"secret-two-keys":       {{7, "exactly one of env:, file:, sha256:"}},
		"secret-unknown-source": {{7, `"vault" is not a secret reference`}},
		"session-shared":        {{7, `clients "billing" and "reports" would share role "app"'s session "shared"`}},
		"sha256":                {{7, "sha256: must be 64 hex characters"}},
		"syntax":                {{2, "did not find expected ',' or '}'"}},
		"syntax-sequence":       {{2, "did not find expected key"}},
		"transitive-tag":        {{5, `transitive tag key "project" is not among its tags`}},
		"uid-negative":          {{6, "cannot unmarshal !!int `-1` into uint32"}},
		"unknown-key-imds":      {{3, "field tokenz is not a known key"}},
		"unknown-key-role":      {{2, "field duraton is not a known key"}},
		"unknown-key-top":       {{2, "field listn is not a known key"}},
		"via-cycle":             {{4, `role "a": via forms a cycle`}, {6, `role "b": via forms a cycle`}},
		"via-unknown":           {{4, `role "a": via names unknown role "nope"`}},
		"jwt": {
			{7, `client "pods": match.jwt.provider "nope" is not an identity_providers entry`},
			{10, `identity provider "cluster": issuer is required`},
			{12, `identity provider "cluster": jwks_url "http://example.test/jwks": plain http only to a loopback address; use https`},
		},
		// Several problems in one file are all reported, in line order.
		"multiple": {
			{2, "listen: 0.0.0.0:8169 is neither loopback nor link-local"},
			{3, `imds.tokens must be "required" or "optional", not "sometimes"`},
			{9, `client "billing": unknown role "reports"`},
		},
		"multiple-decode": {
			{2, "field listn is not a known key"},
			{5, `invalid duration "1hour"`},
			{8, `invalid address or CIDR "not-a-cidr"`},
		},
	}
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "invalid-"), ".yaml")
		seen[name] = true
		wants, ok := cases[name]
		if !ok {
			t.Errorf("%s has no expected problems in this table", f)
			continue
		}
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			c, err := config.Parse(data)
			if c != nil {
				t.Errorf("Parse returned a config with its error")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Parse took %s", d)
			}
			checkProblems(t, problems(t, err), wants)

			// Load reports the same problems, and names the file.
			_, err = config.Load(f)
			checkProblems(t, problems(t, err), wants)
			msg := err.Error()
			if !strings.HasPrefix(msg, f+": ") {
				t.Errorf("Load error %q does not start with the path", msg)
			}
			for _, w := range wants {
				if w.line > 0 && !strings.Contains(msg, fmt.Sprintf("line %d: ", w.line)) {
					t.Errorf("Load error %q does not name line %d", msg, w.line)
				}
			}
		})
	}
	for name := range cases {
		if !seen[name] {
			t.Errorf("testdata/invalid-%s.yaml is missing", name)
		}
	}
}

func TestOversized(t *testing.T) {
	data := []byte("region: us-east-1\n# " + strings.Repeat("x", config.MaxFileSize) + "\n")
	t.Run("Parse", func(t *testing.T) {
		checkProblems(t, problems(t, must(config.Parse(data))), []want{{0, fmt.Sprintf("larger than %d bytes", config.MaxFileSize)}})
	})
	t.Run("Load", func(t *testing.T) {
		path := writeFile(t, "big.yaml", string(data))
		_, err := config.Load(path)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("larger than %d bytes", config.MaxFileSize)) {
			t.Fatalf("Load = %v, want a size error", err)
		}
	})
	t.Run("at the limit", func(t *testing.T) {
		head := "region: us-east-1\n# "
		ok := []byte(head + strings.Repeat("x", config.MaxFileSize-len(head)-1) + "\n")
		if len(ok) != config.MaxFileSize {
			t.Fatalf("test file is %d bytes", len(ok))
		}
		if _, err := config.Parse(ok); err != nil {
			t.Fatalf("Parse of exactly MaxFileSize bytes: %v", err)
		}
	})
}

// must drops the config of Parse and keeps its error.
func must(_ *config.Config, err error) error { return err }

// TestSyntaxLines checks the lines of YAML syntax errors: yaml.v3 numbers
// parser errors from 0, the config package corrects them.
func TestSyntaxLines(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       want
	}{
		{"flow mapping left open at the end", "imds: {tokens: required\n", want{2, "did not find expected ',' or '}'"}},
		{"error on line 1", "region: [x}\n", want{1, "did not find expected ',' or ']'"}},
		{"flow sequence left open on line 3", "region: x\n\nlisten: [a, b\n", want{3, "did not find expected ',' or ']'"}},
		{"sequence item among keys", "a: 1\nb: 2\n- c\n", want{3, "did not find expected key"}},
		{"text after a quoted scalar", "a: 1\nb: 2\nc: 'x' y\n", want{3, "did not find expected key"}},
		// yaml.v3 names the line where the enclosing collection starts, when it is not the first.
		{"bad indentation", "roles:\n  - name: a\n    via: b\n   duration: 1h\n", want{2, "did not find expected '-' indicator"}},
		{"scanner error keeps its line", "a: 1\nb: 2\nc: @x\n", want{3, "cannot start any token"}},
		{"mapping value in a scalar", "region: x\nadmin_listen: a: b\n", want{2, "mapping values are not allowed"}},
		{"duplicate key", "region: a\nregion: b\n", want{2, `mapping key "region" already defined at line 1`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, problems(t, must(config.Parse([]byte(tc.yaml)))), []want{tc.want})
		})
	}
}

func TestWarnings(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want []string // substrings, one per warning
	}{
		{"20m in local mode", "roles:\n  - name: app\n    duration: 20m\n", []string{`line 3: role "app": duration 20m0s is under 30m0s`}},
		{"warning names the stale window", "roles:\n  - name: app\n    duration: 20m\n", []string{"under 15m0s left"}},
		{"1m is the local minimum", "roles: [{name: app, duration: 1m}]\n", []string{"duration 1m0s"}},
		{"15m in aws mode", "sts: {mode: aws}\nroles: [{name: app, arn: \"arn:aws:iam::123456789012:role/a\", duration: 15m}]\n", []string{"duration 15m0s"}},
		{"30m is enough", "roles: [{name: app, duration: 30m}]\n", nil},
		{
			"bearer token kept from a third-party jwks_url",
			"roles: [{name: app}]\nidentity_providers:\n  - name: ci\n    issuer: https://token.ci.example\n    audiences: [sts]\n    jwks_url: https://token.ci.example/keys\n    kubernetes: {api_url: \"https://127.0.0.1:6443\", bearer_token_file: /run/token}\n",
			[]string{`line 6: identity provider "ci": jwks_url is not on kubernetes.api_url's server, so kubernetes.bearer_token_file is not sent`},
		},
		{
			"jwks_url on api_url's server",
			"roles: [{name: app}]\nidentity_providers:\n  - name: k8s\n    issuer: https://kubernetes.default.svc\n    audiences: [sts]\n    jwks_url: https://127.0.0.1:443/openid/v1/jwks\n    kubernetes: {api_url: \"https://127.0.0.1\", bearer_token_file: /run/token}\n",
			nil,
		},
		{"default 1h", "roles: [{name: app}]\n", nil},
		{
			"trust policy in aws mode",
			"sts: {mode: aws}\nroles:\n  - name: app\n    arn: arn:aws:iam::123456789012:role/a\n    trust_policy: {Version: 2012-10-17, Statement: [{Effect: Allow, Principal: {AWS: \"123456789012\"}, Action: \"sts:AssumeRole\"}]}\n",
			[]string{`line 3: role "app": trust_policy is used only in local mode`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(c.Warnings) != len(tc.want) {
				t.Fatalf("warnings %q, want %d", c.Warnings, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(c.Warnings[i], w) {
					t.Errorf("warning %q does not contain %q", c.Warnings[i], w)
				}
			}
		})
	}
}

func TestInvalidValues(t *testing.T) {
	// Problems found by validation that have no testdata file of their own.
	for _, tc := range []struct {
		name, yaml string
		want       want
	}{
		{"listen without port", "listen: [\"127.0.0.1\"]\n", want{1, "is not host:port"}},
		{"listen on a host name", "listen: [\"example.com:80\"]\n", want{1, "use an IP address"}},
		{"listen on all interfaces", "listen: [\":8169\"]\n", want{1, "use an IP address"}},
		{"sts local listen public", "sts: {local: {listen: \"192.0.2.1:8171\"}}\n", want{1, "sts.local.listen: 192.0.2.1:8171 is neither loopback nor link-local"}},
		{"mapped IPv4 is unmapped", "listen: [\"[::ffff:8.8.8.8]:80\"]\n", want{1, "neither loopback nor link-local"}},
		{"unknown sts mode", "sts:\n  mode: remote\n", want{2, `sts.mode must be "local" or "aws", not "remote"`}},
		{"bad sts endpoint", "sts: {mode: aws, endpoint: \"sts.amazonaws.com\"}\n", want{1, "is not an http(s) URL"}},
		{"short account id", "sts:\n  local:\n    account_id: 12345\n", want{3, "must be 12 digits"}},
		{"negative max entries", "cache:\n  max_entries: -1\n", want{2, "cache.max_entries must be at least 1"}},
		{"negative warm max", "cache:\n  warm_max: -1\n", want{2, "cache.warm_max must be a count of sessions, 0 or more (0 = no warm-up), not -1"}},
		{"warm max not a number", "cache:\n  warm_max: lots\n", want{2, "cannot unmarshal"}},
		{"hop limit", "imds: {hop_limit: 65}\n", want{1, "imds.hop_limit must be 1..64"}},
		{"infinite rps", "limits:\n  per_client_rps: .inf\n", want{2, "must be finite"}},
		{"role name", "roles: [{name: _app}]\n", want{1, `role name "_app" is invalid`}},
		{"aws mode needs an ARN", "sts: {mode: aws}\nroles:\n  - name: app\n    duration: 1h\n", want{3, "is not a role ARN"}},
		{"session name template", "roles:\n  - name: app\n    session_name: \"{{.Client\"\n", want{3, "session_name template"}},
		{"whole seconds", "roles:\n  - name: app\n    duration: 90500ms\n", want{3, "whole seconds"}},
		{"duration as a mapping", "roles:\n  - name: app\n    duration: {h: 1}\n", want{3, "a duration must be a string"}},
		{"client without roles", "clients:\n  - name: c\n    match: {uids: [1]}\n", want{2, "roles must list at least one role"}},
		{"duplicate client", "roles: [{name: r}]\nclients:\n  - {name: c, match: {uids: [1]}, roles: [r]}\n  - {name: c, match: {uids: [2]}, roles: [r]}\n", want{4, `client "c" is defined twice`}},
		{"user with sha256 secret", "sts:\n  local:\n    users:\n      - name: u\n        access_key_id: AKIAIOSFODNN7EXAMPLE\n        secret_access_key: {sha256: " + strings.Repeat("ab", 32) + "}\n", want{6, "cannot be a sha256 reference"}},
		{"user without secret", "sts:\n  local:\n    users:\n      - name: u\n        access_key_id: AKIAIOSFODNN7EXAMPLE\n", want{4, "secret_access_key is required"}},
		{"oidc issuer over http", "sts:\n  local:\n    oidc_providers:\n      - issuer: http://idp.test\n        jwks_file: /j.json\n", want{4, "must be an https URL"}},
		{"policy string null", "roles:\n  - name: app\n    session_policy: \"null\"\n", want{3, "must be a JSON object"}},
		{"policy string array", "roles:\n  - name: app\n    session_policy: \"[1]\"\n", want{3, "policy string is not a JSON object"}},
		{"policy as a list", "roles:\n  - name: app\n    session_policy: [a]\n", want{3, "a policy must be a mapping"}},
		// yaml.v3 v3.0.1 panics on a non-scalar key beside a merge key.
		{"mapping key beside a merge key", "{{},<<}", want{1, "a mapping key must be a plain string, not a mapping"}},
		{"sequence key in a policy", "roles:\n  - name: app\n    trust_policy:\n      ? [a]\n      : b\n", want{4, "not a sequence"}},
		{"alias of a mapping as a key", "region: &r {a: b}\nimds: {*r : x, <<: {}}\n", want{2, "not a mapping"}},
		{"merge key in a policy", "roles:\n  - name: app\n    trust_policy:\n      Statement:\n        - <<: {Effect: Allow}\n          Action: sts:AssumeRole\n", want{5, "merge keys (<<) are not supported in policies"}},
		{"nested alias cycle", "roles:\n  - name: app\n    session_policy: &p {Statement: *p}\n", want{1, "expands to more than"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, problems(t, must(config.Parse([]byte(tc.yaml)))), []want{tc.want})
		})
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	crlfFile := filepath.Join(dir, "token-crlf")
	userFile := filepath.Join(dir, "user-secret")
	for path, content := range map[string]string{
		tokenFile: "file-token\n",
		crlfFile:  "crlf-token\r\n",
		userFile:  "user-secret-value",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hash := strings.Repeat("AB", 32)
	yaml := fmt.Sprintf(`roles:
  - name: app
clients:
  - name: env-client
    match: {token: {env: APP_TOKEN}}
    roles: [app]
  - name: file-client
    match: {token: {file: %q}}
    roles: [app]
  - name: crlf-client
    match: {token: {file: %q}}
    roles: [app]
  - name: hash-client
    match: {token: {sha256: %s}}
    roles: [app]
  - name: literal-client
    match: {token: s3cret-literal}
    roles: [app]
  - name: number-client
    match: {token: 0123}
    roles: [app]
  - name: addr-client
    match: {source_cidrs: [127.0.0.1]}
    roles: [app]
sts:
  local:
    users:
      - name: ci
        access_key_id: AKIAIOSFODNN7EXAMPLE
        secret_access_key: {file: %q}
`, tokenFile, crlfFile, hash, userFile)

	parse := func(t *testing.T) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(yaml))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		return c
	}
	type secret struct {
		source, value, hash string
		line                int
	}
	secrets := func(c *config.Config) []secret {
		var out []secret
		for _, cl := range c.Clients {
			if s := cl.Match.Token; s != nil {
				out = append(out, secret{s.Source(), s.Value, s.SHA256, s.Line})
			}
		}
		s := c.STS.Local.Users[0].SecretAccessKey
		return append(out, secret{s.Source(), s.Value, s.SHA256, s.Line})
	}

	t.Run("unresolved after Parse", func(t *testing.T) {
		c := parse(t)
		checkEqual(t, "secrets", secrets(c), []secret{
			{"env:APP_TOKEN", "", "", 5},
			{"file:" + tokenFile, "", "", 8},
			{"file:" + crlfFile, "", "", 11},
			{"sha256", "", strings.ToLower(hash), 14},
			{"literal", "", "", 17},
			{"literal", "", "", 20},
			{"file:" + userFile, "", "", 30},
		})
		checkEqual(t, "cidr", c.Clients[6].Match.SourceCIDRs, []config.Prefix{{Prefix: netip.MustParsePrefix("127.0.0.1/32")}})
	})

	t.Run("resolved", func(t *testing.T) {
		c := parse(t)
		env := func(k string) (string, bool) {
			if k == "APP_TOKEN" {
				return "env-token", true
			}
			return "", false
		}
		if err := c.Resolve(env, os.ReadFile); err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		checkEqual(t, "secrets", secrets(c), []secret{
			{"env:APP_TOKEN", "env-token", "", 5},
			{"file:" + tokenFile, "file-token", "", 8},
			{"file:" + crlfFile, "crlf-token", "", 11},
			// A sha256 reference keeps the hash only.
			{"sha256", "", strings.ToLower(hash), 14},
			{"literal", "s3cret-literal", "", 17},
			// A scalar's text, not the YAML integer 83.
			{"literal", "0123", "", 20},
			{"file:" + userFile, "user-secret-value", "", 30},
		})
	})

	t.Run("Load reads the environment", func(t *testing.T) {
		path := writeFile(t, "config.yaml", yaml)
		t.Setenv("APP_TOKEN", "from-the-environment")
		c, err := config.Load(path)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		checkEqual(t, "token", c.Clients[0].Match.Token.Value, "from-the-environment")
		checkEqual(t, "file token", c.Clients[1].Match.Token.Value, "file-token")
	})

	secretValues := []string{"s3cret-literal", "file-token", "crlf-token", "user-secret-value", "env-token"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		read config.ReadFile
		want []want
	}{
		{
			name: "missing env",
			env:  map[string]string{},
			read: os.ReadFile,
			want: []want{{5, "clients[env-client].match.token: environment variable APP_TOKEN is not set or empty"}},
		},
		{
			name: "empty env",
			env:  map[string]string{"APP_TOKEN": ""},
			read: os.ReadFile,
			want: []want{{5, "environment variable APP_TOKEN is not set"}},
		},
		{
			name: "missing files",
			env:  map[string]string{"APP_TOKEN": "env-token"},
			read: func(p string) ([]byte, error) {
				if p == tokenFile || p == userFile {
					return os.ReadFile(filepath.Join(dir, "nope"))
				}
				return os.ReadFile(p)
			},
			want: []want{
				{8, "clients[file-client].match.token: read " + tokenFile + ": no such file or directory"},
				{30, "sts.local.users[ci].secret_access_key: read " + userFile + ": no such file or directory"},
			},
		},
		{
			name: "read error that is not a path error",
			env:  map[string]string{"APP_TOKEN": "env-token"},
			read: func(p string) ([]byte, error) {
				if p == crlfFile {
					return nil, errors.New("too large")
				}
				return os.ReadFile(p)
			},
			want: []want{{11, "read " + crlfFile + ": too large"}},
		},
		{
			name: "file of only a newline",
			env:  map[string]string{"APP_TOKEN": "env-token"},
			read: func(p string) ([]byte, error) {
				if p == tokenFile {
					return []byte("\n"), nil
				}
				return os.ReadFile(p)
			},
			want: []want{{8, "file " + tokenFile + " is empty"}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parse(t)
			env := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			err := c.Resolve(env, tc.read)
			checkProblems(t, problems(t, err), tc.want)
			for _, s := range secretValues {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q reveals the secret %q", err, s)
				}
			}
		})
	}

	t.Run("Load names the config file", func(t *testing.T) {
		path := writeFile(t, "config.yaml", "roles: [{name: app}]\nclients:\n  - {name: c, match: {token: {env: CREDSIDECAR_TEST_UNSET_VAR}}, roles: [app]}\n")
		_, err := config.Load(path)
		checkProblems(t, problems(t, err), []want{{3, "CREDSIDECAR_TEST_UNSET_VAR"}})
		if !strings.HasPrefix(err.Error(), path+": 1 problem(s)\n  line 3: ") {
			t.Errorf("Load error = %q", err)
		}
	})
}

func TestReferencedFiles(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"none", "roles: [{name: app}]\nclients: [{name: c, match: {token: {env: T}}, roles: [app]}]\n", nil},
		{"example", "", nil},
		{
			name: "all kinds",
			yaml: `roles:
  - name: app
    web_identity_token_file: /var/run/wi-token
clients:
  - {name: a, match: {token: {file: /run/secrets/a}}, roles: [app]}
  - {name: b, match: {token: {sha256: ` + strings.Repeat("0f", 32) + `}}, roles: [app]}
  - {name: c, match: {token: {file: /run/secrets/c}}, roles: [app]}
sts:
  local:
    signing_key_file: /etc/credsidecar/signing.key
    oidc_providers:
      - {issuer: "https://one.test", jwks_file: /etc/credsidecar/one.json}
      - {issuer: "https://two.test", jwks_file: /etc/credsidecar/two.json}
    users:
      - {name: u, access_key_id: AKIAIOSFODNN7EXAMPLE, secret_access_key: {file: /run/secrets/u}}
identity_providers:
  - {name: k, issuer: "https://k.test", audiences: [x], jwks_file: /etc/credsidecar/k.json}
  - {name: k2, issuer: "https://k2.test", audiences: [x], kubernetes: {api_url: "https://127.0.0.1:6443", ca_file: /run/ca.crt}}
`,
			want: []string{
				"/run/secrets/a", "/run/secrets/c", "/run/secrets/u",
				"/etc/credsidecar/one.json", "/etc/credsidecar/two.json",
				"/etc/credsidecar/signing.key",
				"/etc/credsidecar/k.json", "/run/ca.crt",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.yaml)
			if tc.yaml == "" {
				var err error
				if data, err = os.ReadFile(examplePath); err != nil {
					t.Fatal(err)
				}
			}
			c, err := config.Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkEqual(t, "ReferencedFiles", c.ReferencedFiles(), tc.want)
		})
	}
}

func TestErrorString(t *testing.T) {
	err := &config.Error{Problems: []config.Problem{{Line: 3, Msg: "bad"}, {Msg: "worse"}}}
	checkEqual(t, "Error()", err.Error(), "config: 2 problem(s)\n  line 3: bad\n  worse")
	err.Path = "/etc/c.yaml"
	checkEqual(t, "Error() with path", err.Error(), "/etc/c.yaml: 2 problem(s)\n  line 3: bad\n  worse")
}

func TestIsLocalAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1": true, "127.1.2.3": true, "::1": true, "169.254.169.254": true, "169.254.170.2": true,
		"fe80::1": true, "fd00:ec2::254": true, "fd00:ec2::23": true, "::ffff:127.0.0.1": true,
		"0.0.0.0": false, "10.0.0.1": false, "8.8.8.8": false, "::": false, "fd00:ec2::1": false, "::ffff:8.8.8.8": false,
	} {
		if got := config.IsLocalAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("IsLocalAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

// lineOf is the 1-based line of the first line of text starting with prefix.
func lineOf(t *testing.T, text []byte, prefix string) int {
	t.Helper()
	for i, l := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	t.Fatalf("no line starts with %q", prefix)
	return 0
}

// TestDefaultsSeeMergedKeys: a key written through a merge key counts as
// written — `warm_max: 0` (no warm-up) merged in must not become the
// default of 64.
func TestDefaultsSeeMergedKeys(t *testing.T) {
	for _, tc := range []struct{ name, cache string }{
		{"plain", "cache:\n  warm_max: 0\n"},
		{"merged mapping", "cache:\n  <<: {warm_max: 0}\n"},
		{"merged sequence", "cache:\n  <<: [{max_entries: 5}, {warm_max: 0}]\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.Parse([]byte("sts: {mode: local}\n" + tc.cache))
			if err != nil {
				t.Fatal(err)
			}
			if c.Cache.WarmMax != 0 {
				t.Fatalf("warm_max written as 0 through %s became %d", tc.name, c.Cache.WarmMax)
			}
		})
	}
}

// TestProblemLinesSeeMergedKeys: a bad value written through a merge key is
// reported at its own line, not at the mapping that merged it.
func TestProblemLinesSeeMergedKeys(t *testing.T) {
	_, err := config.Parse([]byte("sts: {mode: local}\ncache:\n  max_entries: 10\n  <<: {warm_max: -1}\n"))
	if err == nil || !strings.Contains(err.Error(), "line 4:") {
		t.Fatalf("a negative warm_max merged in on line 4: %v", err)
	}
}
