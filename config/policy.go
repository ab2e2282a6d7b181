package config

import "github.com/credsidecar/credsidecar/iampolicy"

// policyCheck validates a policy document with the IAM grammar: trust
// policies need a Principal, identity and session policies must not have one.
// The error says where in the document (IAM's MalformedPolicyDocument).
func policyCheck(doc string, trust bool) error {
	kind := iampolicy.KindIdentity
	if trust {
		kind = iampolicy.KindTrust
	}
	_, err := iampolicy.ParseKind([]byte(doc), kind)
	return err
}
