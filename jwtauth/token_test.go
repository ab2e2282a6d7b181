package jwtauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// handMade builds a token from a header and claims with an arbitrary
// signature: the shapes a signer library refuses to produce.
func handMade(h map[string]any, c map[string]any, sig string) string {
	return b64(h) + "." + b64(c) + "." + sig
}

func TestVerifyTokenAccepts(t *testing.T) {
	for _, k := range []testKey{rsaKey(t, "r1"), ecKey(t, "e1"), {kid: "p1", alg: jose.PS256, priv: rsaKey(t, "").priv, pub: rsaKey(t, "").pub}} {
		t.Run(string(k.alg), func(t *testing.T) {
			tok := sign(t, k, claims(), nil)
			c, err := VerifyToken(tok, keySet(t, k), testPolicy(), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "system:serviceaccount:prod:billing" || c.Audience != "credsidecar" || c.KeyThumbprint == "" {
				t.Fatalf("claims = %+v", c)
			}
			ns := c.All["kubernetes.io"].(map[string]any)["namespace"]
			if ns != "prod" {
				t.Fatalf("nested claim = %v", ns)
			}
		})
	}
}

func TestVerifyTokenNoKid(t *testing.T) {
	// A token without kid is tried against every key of its provider only.
	k := rsaKey(t, "")
	tok := sign(t, k, claims(), nil)
	if _, err := VerifyToken(tok, keySet(t, ecKey(t, "e1"), rsaKey(t, "r1")), testPolicy(), testNow); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyToken(tok, keySet(t, rsaKeyB(t, "b")), testPolicy(), testNow); ReasonOf(err) != ReasonSignature {
		t.Fatalf("err = %v, want a signature failure", err)
	}
}

func TestVerifyTokenRefuses(t *testing.T) {
	k := rsaKey(t, "r1")
	set := keySet(t, k)
	with := func(edit func(map[string]any)) string {
		c := claims()
		edit(c)
		return sign(t, k, c, nil)
	}
	hmacToken := func() string {
		h := b64(map[string]any{"alg": "HS256", "kid": "r1"})
		p := b64(claims())
		// The HMAC "key" an attacker would use: the public key's bytes.
		m := hmac.New(sha256.New, rsaA.PublicKey.N.Bytes())
		m.Write([]byte(h + "." + p))
		return h + "." + p + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	valid := sign(t, k, claims(), nil)
	parts := strings.Split(valid, ".")
	tests := []struct {
		name   string
		token  string
		pol    func(*Policy)
		reason Reason
		msg    string
	}{
		{"alg none", handMade(map[string]any{"alg": "none"}, claims(), ""), nil, ReasonMalformed, "not a signed JWT"},
		{"alg none with signature", handMade(map[string]any{"alg": "none"}, claims(), "AA"), nil, ReasonAlgorithm, `algorithm "none" is not accepted`},
		{"HMAC", hmacToken(), nil, ReasonAlgorithm, `algorithm "HS256" is not accepted`},
		{"ES512 not accepted from callers", handMade(map[string]any{"alg": "ES512"}, claims(), "AA"), nil, ReasonAlgorithm, `"ES512"`},
		{"header jwk", sign(t, k, claims(), map[jose.HeaderKey]any{"jwk": json.RawMessage(jwks(t, k)[9 : len(jwks(t, k))-2])}), nil, ReasonHeaderKey, `"jwk"`},
		{"header jku", sign(t, k, claims(), map[jose.HeaderKey]any{"jku": "https://evil.test/jwks"}), nil, ReasonHeaderKey, `"jku"`},
		{"header x5c", sign(t, k, claims(), map[jose.HeaderKey]any{"x5c": []string{"MIIB"}}), nil, ReasonHeaderKey, `"x5c"`},
		{"header x5u", sign(t, k, claims(), map[jose.HeaderKey]any{"x5u": "https://evil.test/cert"}), nil, ReasonHeaderKey, `"x5u"`},
		{"two segments", parts[0] + "." + parts[1], nil, ReasonMalformed, "not a signed JWT"},
		{"four segments", valid + ".x", nil, ReasonMalformed, "not a signed JWT"},
		{"empty", "", nil, ReasonMalformed, "not a signed JWT"},
		{"bad base64 header", "!!!." + parts[1] + "." + parts[2], nil, ReasonMalformed, "header is not base64url"},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], nil, ReasonMalformed, "header is not a JSON object"},
		{"payload not JSON", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("[1]")) + "." + parts[2], nil, ReasonMalformed, ""},
		{"bad base64 signature", parts[0] + "." + parts[1] + ".!!", nil, ReasonMalformed, "cannot parse"},
		{"oversized", strings.Repeat("a", MaxTokenSize+1), nil, ReasonMalformed, "more than"},
		{"tampered payload", parts[0] + "." + b64(func() map[string]any { c := claims(); c["sub"] = "system:serviceaccount:kube-system:admin"; return c }()) + "." + parts[2], nil, ReasonSignature, "signature does not verify"},
		{"other key", sign(t, rsaKeyB(t, "r1"), claims(), nil), nil, ReasonSignature, "signature does not verify"},
		{"unknown kid", sign(t, rsaKey(t, "r9"), claims(), nil), nil, ReasonUnknownKey, `no key "r9"`},
		{"EC alg for RSA key", sign(t, ecKey(t, "r1"), claims(), nil), nil, ReasonUnknownKey, "no key"},
		{"wrong issuer", with(func(c map[string]any) { c["iss"] = "https://evil.test" }), nil, ReasonIssuer, "is not"},
		{"no issuer configured", valid, func(p *Policy) { p.Issuer = "" }, ReasonIssuer, "no issuer configured"},
		{"wrong audience", with(func(c map[string]any) { c["aud"] = []string{"sts.amazonaws.com"} }), nil, ReasonAudience, "holds none"},
		{"no audience", with(func(c map[string]any) { delete(c, "aud") }), nil, ReasonAudience, "holds none"},
		{"no audience configured", valid, func(p *Policy) { p.Audiences = nil }, ReasonAudience, "no audience configured"},
		{"missing exp", with(func(c map[string]any) { delete(c, "exp") }), nil, ReasonClaims, "exp is required"},
		{"missing sub", with(func(c map[string]any) { delete(c, "sub") }), nil, ReasonClaims, "sub is required"},
		{"exp not a number", with(func(c map[string]any) { c["exp"] = "soon" }), nil, ReasonClaims, "wrong types"},
		{"expired", with(func(c map[string]any) { c["exp"] = testNow.Add(-time.Minute).Unix() }), nil, ReasonExpired, "expired"},
		{"not yet valid", with(func(c map[string]any) { c["nbf"] = testNow.Add(2 * time.Minute).Unix() }), nil, ReasonNotYetValid, "nbf"},
		{"issued in the future", with(func(c map[string]any) { c["iat"] = testNow.Add(2 * time.Minute).Unix(); c["nbf"] = testNow.Unix() }), nil, ReasonNotYetValid, "iat"},
		{"lifetime too long", with(func(c map[string]any) { c["exp"] = testNow.Add(48 * time.Hour).Unix() }), nil, ReasonLifetime, "exceeds 24h"},
		{"lifetime too long without iat", with(func(c map[string]any) { delete(c, "iat"); c["exp"] = testNow.Add(25 * time.Hour).Unix() }), nil, ReasonLifetime, "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol := testPolicy()
			if tc.pol != nil {
				tc.pol(&pol)
			}
			_, err := VerifyToken(tc.token, set, pol, testNow)
			if err == nil {
				t.Fatal("accepted")
			}
			if got := ReasonOf(err); got != tc.reason {
				t.Fatalf("reason = %d, want %d (%v)", got, tc.reason, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not say %q", err, tc.msg)
			}
			if strings.Contains(err.Error(), tc.token) && len(tc.token) > 8 {
				t.Fatal("the error contains the token")
			}
		})
	}
}

func TestVerifyTokenLeeway(t *testing.T) {
	k := rsaKey(t, "r1")
	c := claims()
	c["exp"] = testNow.Add(-10 * time.Second).Unix()
	if _, err := VerifyToken(sign(t, k, c, nil), keySet(t, k), testPolicy(), testNow); err != nil {
		t.Fatalf("exp 10s ago, within the leeway: %v", err)
	}
	c = claims()
	c["nbf"] = testNow.Add(10 * time.Second).Unix()
	if _, err := VerifyToken(sign(t, k, c, nil), keySet(t, k), testPolicy(), testNow); err != nil {
		t.Fatalf("nbf in 10s, within the leeway: %v", err)
	}
}

func TestParseJWKS(t *testing.T) {
	k := rsaKey(t, "r1")
	good := string(jwks(t, k))
	tests := []struct {
		name, doc, msg string
		n              int
	}{
		{"rsa and ec", string(jwks(t, k, ecKey(t, "e1"))), "", 2},
		{"not json", "nope", "not a JSON object", 0},
		{"no keys", `{"keys":[]}`, "no usable signing key", 0},
		{"keys not a list", `{"keys":{}}`, "not a JSON object with keys", 0},
		{"symmetric key only", `{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}`, "not an RSA or EC public key", 0},
		{"unknown kty skipped", `{"keys":[{"kty":"XYZ","kid":"x"},` + good[9:], "", 1},
		{"encryption key skipped", strings.Replace(good, `"use":"sig"`, `"use":"enc"`, 1), "no usable signing key", 0},
		{"oversized", `{"keys":[` + strings.Repeat(" ", MaxJWKSSize) + `]}`, "more than", 0},
		{"small RSA", smallRSA(t), "RSA key of 1024 bits", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := ParseJWKS([]byte(tc.doc))
			if tc.msg != "" {
				if err == nil || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("err = %v, want %q", err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ks.Len() != tc.n {
				t.Fatalf("%d keys, want %d", ks.Len(), tc.n)
			}
		})
	}
}
