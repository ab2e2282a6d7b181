package iampolicy_test

import (
	"fmt"

	"github.com/credsidecar/credsidecar/iampolicy"
)

// A trust policy that names only the account: the caller is trusted, but
// (same account) its identity policy must also allow sts:AssumeRole.
func ExampleEvaluate() {
	trust, err := iampolicy.ParseKind([]byte(`{
		"Version": "2012-10-17",
		"Statement": [{
			"Effect": "Allow",
			"Principal": {"AWS": "arn:aws:iam::111122223333:root"},
			"Action": "sts:AssumeRole",
			"Condition": {"StringEquals": {"sts:ExternalId": "ext-123"}}
		}]
	}`), iampolicy.KindTrust)
	if err != nil {
		fmt.Println(err)
		return
	}
	res := iampolicy.Evaluate([]*iampolicy.Policy{trust}, iampolicy.Request{
		Principal: iampolicy.Principal{
			Type:    "AWS",
			ARN:     "arn:aws:sts::111122223333:assumed-role/ci/build-7",
			Aliases: []string{"arn:aws:iam::111122223333:role/ci"},
			Account: "111122223333",
		},
		Action:   "sts:AssumeRole",
		Resource: "arn:aws:iam::111122223333:role/deployer",
		Context:  map[string][]string{"sts:ExternalId": {"ext-123"}},
	})
	fmt.Println(res.Decision, res.PrincipalMatch, res.Statement.Index)

	_, err = iampolicy.ParseKind([]byte(`{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}`), iampolicy.KindTrust)
	fmt.Println(err)
	// Output:
	// allow account 0
	// MalformedPolicyDocument: Statement.Principal: required element is missing in a trust policy
}
