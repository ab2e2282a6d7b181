// Package configtest builds configs for tests the way config.Load does,
// from bytes: parse, validate, and resolve secret references (without
// Resolve, literal tokens stay empty and no client matches on them).
package configtest

import (
	"os"
	"testing"

	"github.com/credsidecar/credsidecar/config"
)

// Parse parses and resolves yml, failing the test on any problem. env:
// references resolve against nothing, file: references against the disk.
func Parse(t testing.TB, yml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse([]byte(yml))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	noEnv := func(string) (string, bool) { return "", false }
	if err := cfg.Resolve(noEnv, os.ReadFile); err != nil {
		t.Fatalf("config.Resolve: %v", err)
	}
	return cfg
}
