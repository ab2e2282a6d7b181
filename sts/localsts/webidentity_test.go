package localsts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/agent"
)

func TestSourceWebIdentityReadsTokenFileEachCall(t *testing.T) {
	f := newFixture(t, nil)
	src := NewSource(f.issuer)
	tokenFile := filepath.Join(t.TempDir(), "token")
	now := time.Now()
	write := func(claims map[string]any) {
		if err := os.WriteFile(tokenFile, []byte(signJWT(t, f.rsaKey, "k1", claims)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	req := agent.Request{RoleARN: roleARN("web"), SessionName: "pod-1", WebIdentityTokenFile: tokenFile, Duration: 2 * time.Minute}
	write(webClaims(now))
	creds, err := src.Retrieve(bg, req)
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	if creds.AssumedRoleARN != assumedARN("web", "pod-1") || creds.AccountID != testAccount {
		t.Errorf("credentials %+v", creds)
	}
	if d := creds.Expiration.Sub(creds.Issued); d != 2*time.Minute {
		t.Errorf("lifetime %v, want the in-process 2m", d)
	}
	// The file is re-read: a token for another subject is now denied, by
	// the same function the Query API uses.
	bad := webClaims(now)
	bad["sub"] = "system:serviceaccount:prod:intruder"
	write(bad)
	_, err = src.Retrieve(bg, req)
	if se, ok := err.(*agent.SourceError); !ok || se.Code != "AccessDenied" {
		t.Fatalf("other subject: %v", err)
	}
	os.Remove(tokenFile)
	if _, err := src.Retrieve(bg, req); err == nil {
		t.Fatal("missing token file: no error")
	}
}

func TestJWKSReloadedWithAccount(t *testing.T) {
	f := newFixture(t, nil)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	in := WebIdentityInput{RoleARN: roleARN("web"), RoleSessionName: "ec", WebIdentityToken: signJWT(t, ecKey, "ec1", webClaims(time.Now()))}
	if _, err := f.issuer.AssumeRoleWithWebIdentity(bg, in); err == nil || !strings.Contains(err.Error(), "InvalidIdentityToken") {
		t.Fatalf("unknown EC key: %v", err)
	}
	// Rotate the JWKS file; the running account keeps its keys until it is
	// rebuilt (a config reload), which reads the file again.
	writeJWKS(t, f.jwks, jwkRSA("k1", &f.rsaKey.PublicKey), jwkEC("ec1", &ecKey.PublicKey))
	if _, err := f.issuer.AssumeRoleWithWebIdentity(bg, in); err == nil {
		t.Fatal("keys changed without a rebuild")
	}
	acct, err := NewAccount(f.cfg, RandomUserKeys)
	if err != nil {
		t.Fatal(err)
	}
	f.issuer.SetAccount(acct)
	out, err := f.issuer.AssumeRoleWithWebIdentity(bg, in)
	if err != nil {
		t.Fatalf("ES256 after reload: %v", err)
	}
	if out.SubjectFromWebIdentityToken != testSubject {
		t.Errorf("subject %q", out.SubjectFromWebIdentityToken)
	}
	// A broken JWKS fails the rebuild, so a reload keeps the old account.
	os.WriteFile(f.jwks, []byte(`{"keys":[]}`), 0o600)
	if _, err := NewAccount(f.cfg, RandomUserKeys); err == nil {
		t.Error("empty JWKS accepted")
	}
	os.Remove(f.jwks)
	if _, err := NewAccount(f.cfg, RandomUserKeys); err == nil {
		t.Error("missing JWKS accepted")
	}
}

func TestParseJWKSRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"not json":      `{`,
		"no keys":       `{"keys":[]}`,
		"only enc keys": `{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]}`,
		"small rsa":     `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`,
		"bad curve":     `{"keys":[{"kty":"EC","crv":"P-192","x":"AA","y":"AA"}]}`,
		"off curve":     `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64(make([]byte, 32)) + `","y":"` + b64(make([]byte, 32)) + `"}]}`,
	} {
		if _, err := parseJWKS([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
