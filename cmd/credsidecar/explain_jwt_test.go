package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TestExplainJWTFile: explain --jwt-file verifies the token as the sidecar
// would and says which jwt condition failed.
func TestExplainJWTFile(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k", Use: "sig"}}})
	jwksPath := filepath.Join(dir, "jwks.json")
	os.WriteFile(jwksPath, jwks, 0o600)
	cfg := writeConfig(t, `
sts: {mode: local}
roles: [{name: app}]
clients:
  - {name: pods, match: {jwt: {provider: cluster, subject: "system:serviceaccount:prod:*"}}, roles: [app]}
identity_providers:
  - {name: cluster, issuer: "https://k8s.test", audiences: [credsidecar], jwks_file: `+jwksPath+`}
`)
	token := func(sub, aud string) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", "k"))
		tok, _ := jwt.Signed(s).Claims(map[string]any{"iss": "https://k8s.test", "sub": sub, "aud": aud, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}).Serialize()
		p := filepath.Join(dir, sub+aud)
		os.WriteFile(p, []byte(tok), 0o600)
		return p
	}
	for _, tc := range []struct {
		name string
		file string
		exit int
		want string
	}{
		{"matches", token("system:serviceaccount:prod:app", "credsidecar"), 0, "pods (line 5): matches"},
		{"other subject", token("system:serviceaccount:dev:app", "credsidecar"), 1, `jwt: subject "system:serviceaccount:dev:app" does not match "system:serviceaccount:prod:*"`},
		{"other audience", token("system:serviceaccount:prod:app", "other"), 1, "jwt: the token is not accepted as a JWT: jwt: audience"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"explain", "--config", cfg, "--jwt-file", tc.file}, &stdout, &stderr)
			if got := exitCode(err, &stderr); got != tc.exit {
				t.Fatalf("exit %d, want %d: %v\n%s", got, tc.exit, err, stdout.String())
			}
			if !strings.Contains(stdout.String(), tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, stdout.String())
			}
			if strings.Contains(stdout.String(), "eyJ") {
				t.Errorf("output shows the token:\n%s", stdout.String())
			}
		})
	}
}
