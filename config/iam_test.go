package config_test

import (
	"strings"
	"testing"

	"github.com/credsidecar/credsidecar/config"
)

// TestUserAccessKeyIDs: the STS API model's accessKeyIdType allows 16-128
// word characters; users' keys are AKIA plus upper-case letters and digits,
// like AKIAI44QH8DHBEXAMPLE in AWS's own documentation (not base32).
func TestUserAccessKeyIDs(t *testing.T) {
	user := func(key string) string {
		return "sts:\n  local:\n    users:\n      - name: u\n        access_key_id: " + key + "\n        secret_access_key: {env: U_SECRET}\n"
	}
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"AKIAI44QH8DHBEXAMPLE", true},
		{"AKIAIOSFODNN7EXAMPLE", true},
		{"AKIA0123456789012345", true}, // 0, 1, 8 and 9 are not base32
		{"AKIA" + strings.Repeat("Z", 124), true},
		{"AKIA" + strings.Repeat("Z", 125), false}, // 129 characters: over the model's 128
		{"AKIA" + strings.Repeat("Z", 15), false},  // 19 characters
		{"AKIAi44qh8dhbexample", false},
		{"AKIAI44QH8DH_EXAMPLE", false},
		{"ASIAI44QH8DHBEXAMPLE", false}, // temporary keys are not users' keys
	} {
		t.Run(tc.key, func(t *testing.T) {
			err := must(config.Parse([]byte(user(tc.key))))
			if tc.ok {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			checkProblems(t, problems(t, err), []want{{5, "access_key_id must be AKIA followed by 16 to 124 characters A-Z or 0-9"}})
		})
	}
}

// TestPolicyProblemLines: a policy written as YAML is reported at the line
// of the element IAM refuses, and NotPrincipal's error names the
// alternative (IAM User Guide, reference_policies_elements_notprincipal.html:
// "You cannot use the NotPrincipal element in an IAM identity-based policy
// nor in an IAM role trust policy").
func TestPolicyProblemLines(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       want
	}{
		{"NotPrincipal in a trust policy", `roles:
  - name: app
    trust_policy:
      Version: 2012-10-17
      Statement:
        - Effect: Allow
          Principal: {AWS: "000000000000"}
          Action: sts:AssumeRole
        - Effect: Deny
          NotPrincipal: {AWS: "arn:aws:iam::000000000000:user/credsidecar"}
          Action: sts:AssumeRole
`, want{10, "Statement[1].NotPrincipal: NotPrincipal is not allowed in trust, identity or session policies; to exempt principals from a Deny, use"}},
		{"NotPrincipal in a permission policy", `roles:
  - name: app
    permission_policies:
      - Statement:
          Effect: Deny
          NotPrincipal: "*"
          Action: "*"
          Resource: "*"
`, want{6, `{"ArnNotEquals": {"aws:PrincipalArn"`}},
		{"Resource in a trust policy", `roles:
  - name: app
    trust_policy:
      Statement:
        - Effect: Allow
          Principal: {AWS: "000000000000"}
          Action: sts:AssumeRole
          Resource: "*"
`, want{8, "Statement[0].Resource: not allowed in a trust policy"}},
		{"an action with two colons", `roles:
  - name: app
    session_policy:
      Statement:
        - {Effect: Allow, Action: "s3:Get:Object", Resource: "*"}
`, want{5, "only one colon"}},
		{"a JSON string policy is reported at its own line", `roles:
  - name: app
    session_policy: '{"Statement": {"Effect": "Deny", "NotPrincipal": "*", "Action": "*", "Resource": "*"}}'
`, want{3, "Statement.NotPrincipal: NotPrincipal is not allowed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkProblems(t, problems(t, must(config.Parse([]byte(tc.yaml)))), []want{tc.want})
		})
	}
}
