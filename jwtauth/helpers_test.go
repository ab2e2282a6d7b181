package jwtauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const testIssuer = "https://issuer.test"

var testNow = time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

// testKey is a signing key with its kid.
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv any
	pub  any
}

var (
	keyOnce sync.Once
	rsaA    *rsa.PrivateKey
	rsaB    *rsa.PrivateKey
	ecA     *ecdsa.PrivateKey
	ec384   *ecdsa.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	keyOnce.Do(func() {
		rsaA, _ = rsa.GenerateKey(rand.Reader, 2048)
		rsaB, _ = rsa.GenerateKey(rand.Reader, 2048)
		ecA, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ec384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	})
}

func rsaKey(t testing.TB, kid string) testKey {
	keys(t)
	return testKey{kid: kid, alg: jose.RS256, priv: rsaA, pub: &rsaA.PublicKey}
}

func rsaKeyB(t testing.TB, kid string) testKey {
	keys(t)
	return testKey{kid: kid, alg: jose.RS256, priv: rsaB, pub: &rsaB.PublicKey}
}

func ecKey(t testing.TB, kid string) testKey {
	keys(t)
	return testKey{kid: kid, alg: jose.ES256, priv: ecA, pub: &ecA.PublicKey}
}

// jwks renders the public halves of ks as a JWKS document.
func jwks(t testing.TB, ks ...testKey) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range ks {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.kid, Use: "sig"})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// claims are a valid token's claims at testNow; tests edit them.
func claims() map[string]any {
	return map[string]any{
		"iss": testIssuer,
		"sub": "system:serviceaccount:prod:billing",
		"aud": []string{"credsidecar"},
		"iat": testNow.Add(-time.Minute).Unix(),
		"nbf": testNow.Add(-time.Minute).Unix(),
		"exp": testNow.Add(10 * time.Minute).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      "prod",
			"serviceaccount": map[string]any{"name": "billing", "uid": "sa-uid"},
			"pod":            map[string]any{"name": "billing-7d9f", "uid": "pod-uid"},
			"node":           map[string]any{"name": "node-a", "uid": "node-uid"},
		},
	}
}

// sign signs c with k, with extra header parameters.
func sign(t testing.TB, k testKey, c map[string]any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if k.kid != "" {
		opts = opts.WithHeader("kid", k.kid)
	}
	for hk, v := range extra {
		opts = opts.WithHeader(hk, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func testPolicy() Policy {
	return Policy{Issuer: testIssuer, Audiences: []string{"credsidecar"}, MaxLifetime: 24 * time.Hour}
}

func keySet(t testing.TB, ks ...testKey) *KeySet {
	t.Helper()
	set, err := ParseJWKS(jwks(t, ks...))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func smallRSA(t testing.TB) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return string(jwks(t, testKey{kid: "s", pub: &k.PublicKey}))
}

// src is a constant budget source.
func src(s string) func() string { return func() string { return s } }
