package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credsidecar/credsidecar/config"
)

// FuzzParse feeds arbitrary bytes to Parse: it must not panic, must return
// either a config or a *config.Error with problems, and every policy it
// accepts must be JSON.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range append(seeds, examplePath) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("roles: [{name: app, trust_policy: {Version: 2012-10-17, Statement: [{Effect: Allow, Principal: {AWS: 012345678901}}]}}]\n"))
	f.Add([]byte("{{},<<}")) // panicked inside yaml.v3 before complexKey
	f.Add([]byte("clients: [{name: c, match: {token: {sha256: " + string(bytes.Repeat([]byte("ab"), 32)) + "}}, roles: [r]}]\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config and an error")
			}
			var ce *config.Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("Parse error %v (%T) is not a *config.Error with problems", err, err)
			}
			for _, p := range ce.Problems {
				if p.Msg == "" || p.Line < 0 {
					t.Fatalf("bad problem %+v", p)
				}
				// Parse recovers from panics inside yaml.v3 as a last
				// resort; each one found deserves a check before decoding.
				if strings.Contains(p.Msg, "YAML decoder failed") {
					t.Fatalf("yaml.v3 panicked: %s", p.Msg)
				}
			}
			return
		}
		var policies []config.Policy
		for _, r := range c.Roles {
			if r.SessionTemplate == nil {
				t.Fatalf("role %q has no session template", r.Name)
			}
			policies = append(policies, r.PermissionPolicies...)
			for _, p := range []*config.Policy{r.TrustPolicy, r.SessionPolicy} {
				if p != nil {
					policies = append(policies, *p)
				}
			}
		}
		for _, u := range c.STS.Local.Users {
			policies = append(policies, u.Policies...)
		}
		for _, p := range c.STS.Local.ManagedPolicies {
			policies = append(policies, p)
		}
		for _, p := range policies {
			var m map[string]any
			if err := json.Unmarshal([]byte(p.JSON), &m); err != nil {
				t.Fatalf("accepted policy is not JSON: %v: %q", err, p.JSON)
			}
		}
		c.ReferencedFiles()
		_ = c.Resolve(func(string) (string, bool) { return "v", true }, func(string) ([]byte, error) { return []byte("x\n"), nil })
	})
}
