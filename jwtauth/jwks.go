package jwtauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// KeySet is a parsed JSON Web Key Set: the public signing keys usable for
// the accepted algorithms. It is immutable.
type KeySet struct {
	keys   []*key
	thumbs map[string]bool
}

type key struct {
	jwk   jose.JSONWebKey
	thumb string
}

// minRSABits refuses toy RSA keys in a JWKS.
const minRSABits = 2048

// ParseJWKS parses a JWKS document. Keys that are not public RSA or EC
// signing keys (private keys, symmetric keys, encryption keys, unknown
// types) are skipped; a set with no usable key is an error, as is a
// document over MaxJWKSSize.
func ParseJWKS(data []byte) (*KeySet, error) {
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("jwks is %d bytes, more than %d", len(data), MaxJWKSSize)
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("jwks is not a JSON object with keys: %w", err)
	}
	ks := &KeySet{thumbs: map[string]bool{}}
	var skipped []string
	for i, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		switch pk := k.Key.(type) {
		case *rsa.PublicKey:
			if pk.N.BitLen() < minRSABits {
				skipped = append(skipped, fmt.Sprintf("key %d: RSA key of %d bits", i, pk.N.BitLen()))
				continue
			}
		case *ecdsa.PublicKey:
		default:
			// Private, symmetric and OKP keys are never verification keys here.
			skipped = append(skipped, fmt.Sprintf("key %d: %T is not an RSA or EC public key", i, k.Key))
			continue
		}
		tb, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			continue
		}
		t := base64.RawURLEncoding.EncodeToString(tb)
		ks.keys = append(ks.keys, &key{jwk: k, thumb: t})
		ks.thumbs[t] = true
	}
	if len(ks.keys) == 0 {
		if len(skipped) > 0 {
			return nil, fmt.Errorf("jwks has no usable signing key (%s)", skipped[0])
		}
		return nil, fmt.Errorf("jwks has no usable signing key")
	}
	return ks, nil
}

// Len is the number of usable keys.
func (ks *KeySet) Len() int {
	if ks == nil {
		return 0
	}
	return len(ks.keys)
}

// Has reports whether the key with thumbprint t is in the set.
func (ks *KeySet) Has(t string) bool { return ks != nil && ks.thumbs[t] }

// HasKeyID reports whether some key has kid.
func (ks *KeySet) HasKeyID(kid string) bool {
	if ks == nil {
		return false
	}
	for _, k := range ks.keys {
		if k.jwk.KeyID == kid {
			return true
		}
	}
	return false
}

// candidates are the keys that may verify a token with kid and alg: by kid
// when the token names one, and only keys whose type (and alg, when the key
// restricts it) fit the algorithm.
func (ks *KeySet) candidates(kid, alg string) []*key {
	if ks == nil {
		return nil
	}
	var out []*key
	for _, k := range ks.keys {
		if kid != "" && k.jwk.KeyID != kid {
			continue
		}
		if k.jwk.Algorithm != "" && k.jwk.Algorithm != alg {
			continue
		}
		switch k.jwk.Key.(type) {
		case *rsa.PublicKey:
			if alg[0] != 'R' && alg[0] != 'P' {
				continue
			}
		case *ecdsa.PublicKey:
			if alg[0] != 'E' {
				continue
			}
		}
		out = append(out, k)
	}
	return out
}
