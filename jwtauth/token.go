// Package jwtauth verifies bearer JWTs: Kubernetes projected
// service-account tokens and any OIDC-issued token. Signatures are checked
// with go-jose v4; what go-jose's claim validation leaves out (a required
// exp and sub, a non-empty expected issuer, a bounded lifetime, keys named
// in the token's own header) is enforced here. Keys come from a JWKS file
// or URL; Kubernetes providers can also ask the API server's TokenReview.
// Verified tokens are cached by digest, and the expensive work that
// unverified tokens can trigger is budgeted per source before it is done.
// The local STS's AssumeRoleWithWebIdentity uses the same verifier.
package jwtauth

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// MaxTokenSize bounds a token's length before anything is decoded. A
// Kubernetes projected token is about 1 KiB; STS accepts up to 20000.
const MaxTokenSize = 16 << 10

// MaxJWKSSize bounds a JWKS document (file or HTTP body).
const MaxJWKSSize = 1 << 20

// DefaultLeeway is how far nbf and iat may lie in the future, and exp in
// the past: the issuer's clock is not ours.
const DefaultLeeway = 30 * time.Second

// CallerAlgorithms are the signature algorithms accepted from callers:
// asymmetric only (never none, never HMAC, whose "key" would be public).
var CallerAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384,
}

// Reason classifies a verification failure.
type Reason int

// Failure reasons.
const (
	// ReasonMalformed: not a compact JWS, bad base64 or JSON, too large.
	ReasonMalformed Reason = iota + 1
	// ReasonAlgorithm: an algorithm outside the accepted list.
	ReasonAlgorithm
	// ReasonHeaderKey: the header names a key (jwk, jku, x5c, x5u).
	ReasonHeaderKey
	// ReasonIssuer: no provider has the token's iss.
	ReasonIssuer
	// ReasonUnknownKey: no key of the provider has the token's kid.
	ReasonUnknownKey
	// ReasonSignature: the signature does not verify.
	ReasonSignature
	// ReasonClaims: a required claim is missing or has the wrong type.
	ReasonClaims
	// ReasonAudience: aud holds none of the provider's audiences.
	ReasonAudience
	// ReasonExpired: exp has passed.
	ReasonExpired
	// ReasonNotYetValid: nbf or iat lie in the future.
	ReasonNotYetValid
	// ReasonLifetime: exp - iat exceeds the provider's bound.
	ReasonLifetime
	// ReasonNode: the token names another node.
	ReasonNode
	// ReasonReview: the API server's TokenReview refused the token.
	ReasonReview
	// ReasonUnavailable: the keys or the API server could not be reached.
	ReasonUnavailable
	// ReasonBusy: the verification budget for the caller's source is spent.
	ReasonBusy
)

// Error is a verification failure. Its message never contains the token.
type Error struct {
	Reason Reason
	Msg    string
	Err    error
}

func (e *Error) Error() string { return "jwt: " + e.Msg }

func (e *Error) Unwrap() error { return e.Err }

func fail(r Reason, err error, format string, args ...any) *Error {
	return &Error{Reason: r, Msg: fmt.Sprintf(format, args...), Err: err}
}

// ReasonOf returns err's Reason (0 when it is no *Error).
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return 0
}

// Policy is what a token must satisfy besides its signature.
type Policy struct {
	// Issuer is the exact iss expected; it must not be empty.
	Issuer string
	// Audiences: aud must contain one of them (at least one is required).
	Audiences []string
	// MaxLifetime bounds exp - iat (exp - now when iat is absent); 0 = no bound.
	MaxLifetime time.Duration
	// Leeway for nbf, iat and exp (0 = DefaultLeeway).
	Leeway time.Duration
	// Algorithms accepted (nil = CallerAlgorithms).
	Algorithms []jose.SignatureAlgorithm
}

// Claims are a verified token's claims.
type Claims struct {
	Issuer  string
	Subject string
	// Audience is the aud value that matched the policy.
	Audience string
	Expiry   time.Time
	// IssuedAt is zero when the token has no iat.
	IssuedAt time.Time
	// All holds every claim as decoded JSON (nested maps, []any, float64).
	All map[string]any
	// KeyThumbprint identifies the key that verified the token (its
	// RFC 7638 thumbprint), so a cache can drop tokens whose key left.
	KeyThumbprint string
}

// header is the part of the JOSE header this package reads itself, to
// refuse keys that a token names for itself before go-jose sees it.
type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// keyHeaders are header parameters that name or carry a key: a verifier
// that used them would let the token choose its own key.
var keyHeaders = []string{"jwk", "jku", "x5c", "x5u", "x5t", "x5t#S256"}

// Parsed is a token decoded but not verified: its header and its claims as
// the token states them.
type Parsed struct {
	tok    *jwt.JSONWebToken
	Alg    string
	KeyID  string
	Issuer string
	all    map[string]any
}

// Parse decodes a compact JWS without checking its signature, refusing
// oversized tokens, other algorithms and header-named keys. The issuer it
// reports only selects whose keys to try.
func Parse(token string, algs []jose.SignatureAlgorithm) (*Parsed, error) {
	if len(token) > MaxTokenSize {
		return nil, fail(ReasonMalformed, nil, "token is %d bytes, more than %d", len(token), MaxTokenSize)
	}
	if algs == nil {
		algs = CallerAlgorithms
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, fail(ReasonMalformed, nil, "not a signed JWT (header.payload.signature)")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return nil, fail(ReasonMalformed, err, "header is not base64url")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hb, &raw); err != nil {
		return nil, fail(ReasonMalformed, err, "header is not a JSON object")
	}
	for _, k := range keyHeaders {
		if _, ok := raw[k]; ok {
			return nil, fail(ReasonHeaderKey, nil, "header parameter %q names a key; only the provider's own keys are used", k)
		}
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return nil, fail(ReasonMalformed, err, "header alg or kid is not a string")
	}
	if !algAllowed(h.Alg, algs) {
		return nil, fail(ReasonAlgorithm, nil, "algorithm %q is not accepted (%s only)", clip(h.Alg), algList(algs))
	}
	tok, err := jwt.ParseSigned(token, algs)
	if err != nil {
		return nil, fail(ReasonMalformed, err, "cannot parse token: %v", err)
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fail(ReasonMalformed, err, "payload is not base64url")
	}
	var all map[string]any
	dec := json.NewDecoder(bytes.NewReader(pb))
	if err := dec.Decode(&all); err != nil || all == nil {
		return nil, fail(ReasonMalformed, err, "payload is not a JSON object")
	}
	iss, _ := all["iss"].(string)
	return &Parsed{tok: tok, Alg: h.Alg, KeyID: h.Kid, Issuer: iss, all: all}, nil
}

func algAllowed(alg string, algs []jose.SignatureAlgorithm) bool {
	for _, a := range algs {
		if string(a) == alg {
			return true
		}
	}
	return false
}

func algList(algs []jose.SignatureAlgorithm) string {
	s := make([]string, len(algs))
	for i, a := range algs {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

// clip shortens a value from a token for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Claim is a top-level claim as the token states it (unverified).
func (p *Parsed) Claim(name string) (any, bool) {
	v, ok := p.all[name]
	return v, ok
}

// Expiry is the token's exp as it states it (unverified).
func (p *Parsed) Expiry() (int64, bool) {
	f, ok := p.all["exp"].(float64)
	return int64(f), ok
}

// Verify checks p's signature with keys (only those whose kid equals the
// header's, or all when the header has none) and its claims against pol at
// time now.
func (p *Parsed) Verify(keys *KeySet, pol Policy, now time.Time) (*Claims, error) {
	if pol.Issuer == "" {
		// go-jose skips the issuer check for an empty expectation.
		return nil, fail(ReasonIssuer, nil, "no issuer configured")
	}
	if p.Issuer != pol.Issuer {
		return nil, fail(ReasonIssuer, nil, "issuer %q is not %q", clip(p.Issuer), pol.Issuer)
	}
	cands := keys.candidates(p.KeyID, p.Alg)
	if len(cands) == 0 {
		if p.KeyID != "" {
			return nil, fail(ReasonUnknownKey, nil, "no key %q of %s verifies %s", clip(p.KeyID), pol.Issuer, p.Alg)
		}
		return nil, fail(ReasonUnknownKey, nil, "no key of %s verifies %s", pol.Issuer, p.Alg)
	}
	var std jwt.Claims
	var used *key
	for _, k := range cands {
		if err := p.tok.Claims(k.jwk.Key); err == nil {
			used = k
			break
		}
	}
	if used == nil {
		return nil, fail(ReasonSignature, nil, "signature does not verify with the keys of %s", pol.Issuer)
	}
	// The signature holds: now the registered claims, typed.
	if err := p.tok.UnsafeClaimsWithoutVerification(&std); err != nil {
		return nil, fail(ReasonClaims, err, "registered claims have the wrong types: %v", err)
	}
	leeway := pol.Leeway
	if leeway == 0 {
		leeway = DefaultLeeway
	}
	if std.Expiry == nil {
		return nil, fail(ReasonClaims, nil, "exp is required")
	}
	if std.Subject == "" {
		return nil, fail(ReasonClaims, nil, "sub is required")
	}
	if len(pol.Audiences) == 0 {
		return nil, fail(ReasonAudience, nil, "no audience configured")
	}
	err := std.ValidateWithLeeway(jwt.Expected{Issuer: pol.Issuer, AnyAudience: pol.Audiences, Time: now}, leeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, fail(ReasonAudience, err, "audience %q holds none of %q", clipList(std.Audience), pol.Audiences)
	case errors.Is(err, jwt.ErrExpired):
		return nil, fail(ReasonExpired, err, "token expired at %s", std.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, fail(ReasonNotYetValid, err, "token is not valid before %s (nbf)", std.NotBefore.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, fail(ReasonNotYetValid, err, "token was issued in the future (iat %s)", std.IssuedAt.Time().UTC().Format(time.RFC3339))
	case err != nil:
		return nil, fail(ReasonClaims, err, "claims: %v", err)
	}
	exp := std.Expiry.Time()
	start := now
	var iat time.Time
	if std.IssuedAt != nil {
		iat = std.IssuedAt.Time()
		start = iat
	}
	if pol.MaxLifetime > 0 && exp.Sub(start) > pol.MaxLifetime {
		return nil, fail(ReasonLifetime, nil, "token lifetime %s exceeds %s", exp.Sub(start), pol.MaxLifetime)
	}
	aud := ""
	for _, a := range std.Audience {
		if contains(pol.Audiences, a) {
			aud = a
			break
		}
	}
	return &Claims{Issuer: std.Issuer, Subject: std.Subject, Audience: aud, Expiry: exp, IssuedAt: iat, All: p.all, KeyThumbprint: used.thumb}, nil
}

func clipList(l []string) string { return clip(strings.Join(l, ",")) }

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// VerifyToken is Parse and Verify in one step (the local STS's use).
func VerifyToken(token string, keys *KeySet, pol Policy, now time.Time) (*Claims, error) {
	p, err := Parse(token, pol.Algorithms)
	if err != nil {
		return nil, err
	}
	return p.Verify(keys, pol, now)
}

// Digest is a token's cache key.
func Digest(token string) [32]byte { return sha256.Sum256([]byte(token)) }
