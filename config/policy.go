package config

import (
	"encoding/json"
	"errors"
)

// policyCheck validates a policy document's grammar.
func policyCheck(doc string, trust bool) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		return err
	}
	if _, ok := m["Statement"]; !ok {
		return errors.New("MalformedPolicyDocument: policy has no Statement")
	}
	return nil
}
