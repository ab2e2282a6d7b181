package localsts

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/credsidecar/credsidecar/iampolicy"
	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// Limits of web identity tokens and JWKS files.
const (
	minWebIdentityToken = 4
	maxWebIdentityToken = 20000
	maxJWKSFile         = 1 << 20
	// jwtLeeway is how far in the future iat and nbf may lie: the IdP's
	// clock is not ours.
	jwtLeeway = 5 * time.Minute
)

// oidcProvider is a compiled sts.local.oidc_providers entry.
type oidcProvider struct {
	issuer    string // as configured, without a trailing slash
	hostPath  string // issuer without scheme: the condition key prefix
	arn       string // arn:aws:iam::ACCT:oidc-provider/<hostPath>
	audiences []string
	keys      []jwk
}

// jwk is one usable key of a JSON Web Key Set.
type jwk struct {
	kid string
	alg string // optional restriction
	rsa *rsa.PublicKey
	ec  *ecdsa.PublicKey
}

func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return data, nil
}

// parseJWKS reads the RSA and EC signing keys of a JSON Web Key Set
// (RFC 7517). Keys of other types, or meant for encryption, are skipped; a
// set with no usable key is an error.
func parseJWKS(data []byte) ([]jwk, error) {
	var set struct {
		Keys []struct {
			Kty string `json:"kty"`
			Kid string `json:"kid"`
			Use string `json:"use"`
			Alg string `json:"alg"`
			N   string `json:"n"`
			E   string `json:"e"`
			Crv string `json:"crv"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("not a JSON Web Key Set: %w", err)
	}
	var keys []jwk
	for i, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		key := jwk{kid: k.Kid, alg: k.Alg}
		switch k.Kty {
		case "RSA":
			n, err1 := b64int(k.N)
			e, err2 := b64int(k.E)
			if err1 != nil || err2 != nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
				return nil, fmt.Errorf("key %d (%q): bad RSA modulus or exponent", i, k.Kid)
			}
			if n.BitLen() < 2048 {
				return nil, fmt.Errorf("key %d (%q): RSA keys must have at least 2048 bits, not %d", i, k.Kid, n.BitLen())
			}
			key.rsa = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			curve, size := curveOf(k.Crv)
			if curve == nil {
				return nil, fmt.Errorf("key %d (%q): unsupported curve %q", i, k.Kid, k.Crv)
			}
			x, err1 := base64.RawURLEncoding.DecodeString(k.X)
			y, err2 := base64.RawURLEncoding.DecodeString(k.Y)
			if err1 != nil || err2 != nil || len(x) != size || len(y) != size {
				return nil, fmt.Errorf("key %d (%q): bad EC coordinates", i, k.Kid)
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
			if err != nil {
				return nil, fmt.Errorf("key %d (%q): %w", i, k.Kid, err)
			}
			key.ec = pub
		default:
			continue
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, errors.New("no RSA or EC signing key")
	}
	return keys, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("bad base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}

func curveOf(crv string) (elliptic.Curve, int) {
	switch crv {
	case "P-256":
		return elliptic.P256(), 32
	case "P-384":
		return elliptic.P384(), 48
	case "P-521":
		return elliptic.P521(), 66
	}
	return nil, 0
}

// jwtAlg describes a JWS algorithm we accept.
type jwtAlg struct {
	hash    crypto.Hash
	newHash func() hash.Hash
	ec      string // curve name for ES*, "" for RS*
}

func algorithm(name string) (jwtAlg, bool) {
	switch name {
	case "RS256":
		return jwtAlg{crypto.SHA256, sha256.New, ""}, true
	case "RS384":
		return jwtAlg{crypto.SHA384, sha512.New384, ""}, true
	case "RS512":
		return jwtAlg{crypto.SHA512, sha512.New, ""}, true
	case "ES256":
		return jwtAlg{crypto.SHA256, sha256.New, "P-256"}, true
	case "ES384":
		return jwtAlg{crypto.SHA384, sha512.New384, "P-384"}, true
	case "ES512":
		return jwtAlg{crypto.SHA512, sha512.New, "P-521"}, true
	}
	return jwtAlg{}, false
}

// verify checks sig over signed with the key, for the algorithm.
func (k jwk) verify(alg string, a jwtAlg, signed, sig []byte) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	h := a.newHash()
	h.Write(signed)
	digest := h.Sum(nil)
	if a.ec == "" {
		return k.rsa != nil && rsa.VerifyPKCS1v15(k.rsa, a.hash, digest, sig) == nil
	}
	if k.ec == nil || k.ec.Curve.Params().Name != a.ec {
		return false
	}
	size := (k.ec.Curve.Params().BitSize + 7) / 8
	if len(sig) != 2*size {
		return false
	}
	r := new(big.Int).SetBytes(sig[:size])
	s := new(big.Int).SetBytes(sig[size:])
	return ecdsa.Verify(k.ec, digest, r, s)
}

// webIdentityClaims are the JWT claims STS looks at.
type webIdentityClaims struct {
	Issuer              string
	Subject             string
	Audience            []string
	AMR                 []string
	Expires             int64
	NotBefore, IssuedAt *int64
}

func invalidToken(format string, args ...any) *Error {
	return stsErr(400, "InvalidIdentityToken", format, args...)
}

// parseJWT decodes a compact JWS without checking its signature: the
// issuer decides which keys check it.
func parseJWT(token string) (header struct{ Alg, Kid string }, claims webIdentityClaims, signed, sig []byte, err *Error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return header, claims, nil, nil, invalidToken("The web identity token is not a signed JWT (header.payload.signature).")
	}
	hb, e1 := base64.RawURLEncoding.DecodeString(parts[0])
	pb, e2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, e3 := base64.RawURLEncoding.DecodeString(parts[2])
	if e1 != nil || e2 != nil || e3 != nil {
		return header, claims, nil, nil, invalidToken("The web identity token is not valid base64url.")
	}
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if json.Unmarshal(hb, &h) != nil {
		return header, claims, nil, nil, invalidToken("The web identity token header is not valid JSON.")
	}
	header.Alg, header.Kid = h.Alg, h.Kid
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.UseNumber()
	if dec.Decode(&raw) != nil {
		return header, claims, nil, nil, invalidToken("The web identity token payload is not a JSON object.")
	}
	claims.Issuer, _ = raw["iss"].(string)
	claims.Subject, _ = raw["sub"].(string)
	claims.Audience = stringOrList(raw["aud"])
	claims.AMR = stringOrList(raw["amr"])
	for _, f := range []struct {
		name string
		dst  **int64
	}{{"nbf", &claims.NotBefore}, {"iat", &claims.IssuedAt}} {
		if v, ok := raw[f.name]; ok {
			n, ok := integerClaim(v)
			if !ok {
				return header, claims, nil, nil, invalidToken("The web identity token claim %s must be an integer number of seconds.", f.name)
			}
			*f.dst = &n
		}
	}
	exp, ok := integerClaim(raw["exp"])
	if !ok {
		return header, claims, nil, nil, invalidToken("The web identity token must have an integer exp claim.")
	}
	claims.Expires = exp
	if claims.Issuer == "" {
		return header, claims, nil, nil, invalidToken("The web identity token has no iss claim.")
	}
	if claims.Subject == "" {
		return header, claims, nil, nil, invalidToken("The web identity token has no sub claim.")
	}
	return header, claims, []byte(parts[0] + "." + parts[1]), sig, nil
}

func integerClaim(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil
}

func stringOrList(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// WebIdentityInput is one AssumeRoleWithWebIdentity request.
type WebIdentityInput struct {
	RoleARN          string
	RoleSessionName  string
	WebIdentityToken string
	ProviderID       string
	// Duration is DurationSeconds; 0 means the default (1h).
	Duration    time.Duration
	durationSet bool
	Policy      string
	PolicyARNs  []string
	// SourceIP and SecureTransport feed aws:SourceIp and aws:SecureTransport.
	SourceIP        netip.Addr
	SecureTransport bool
	// AllowShort lets durations go down to stsrules.MinLocalDuration (in process only).
	AllowShort bool
}

// SetDuration sets DurationSeconds as given by the client.
func (in *WebIdentityInput) SetDuration(d time.Duration) { in.Duration, in.durationSet = d, true }

// WebIdentityResult is an AssumeRoleWithWebIdentity session with what the
// response reports about the token.
type WebIdentityResult struct {
	*Issued
	// SubjectFromWebIdentityToken is the token's sub.
	SubjectFromWebIdentityToken string
	// Provider is the OIDC provider ARN that trusted the token.
	Provider string
	// Audience is the token audience that matched the provider.
	Audience string
}

func (in *WebIdentityInput) validate() *Error {
	if err := checkLen("roleArn", in.RoleARN, 20, 2048); err != nil {
		return err
	}
	if err := checkSessionName("roleSessionName", in.RoleSessionName); err != nil {
		return err
	}
	if err := checkLen("webIdentityToken", in.WebIdentityToken, minWebIdentityToken, maxWebIdentityToken); err != nil {
		// Never echo the token.
		return constraintErr("webIdentityToken", "", fmt.Sprintf("Member must have length between %d and %d", minWebIdentityToken, maxWebIdentityToken))
	}
	if in.ProviderID != "" {
		if err := checkLen("providerId", in.ProviderID, 4, 2048); err != nil {
			return err
		}
	}
	min := stsrules.MinDuration
	if in.AllowShort {
		min = stsrules.MinLocalDuration
	}
	if err := checkDuration(in.Duration, in.durationSet, min, stsrules.MaxDuration); err != nil {
		return err
	}
	return checkSessionPolicy(in.Policy, in.PolicyARNs)
}

// AssumeRoleWithWebIdentity verifies the OIDC token against the JWKS of the
// provider whose issuer is the token's iss, checks aud, exp, nbf and iat,
// authorizes the federated principal with the role's trust policy alone,
// and mints the session. The Query API and the in-process Source both call
// it.
func (i *Issuer) AssumeRoleWithWebIdentity(_ context.Context, in WebIdentityInput) (*WebIdentityResult, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	acct := i.Account()
	now := i.clk.Now()
	header, claims, signed, sig, perr := parseJWT(in.WebIdentityToken)
	if perr != nil {
		return nil, perr
	}
	alg, ok := algorithm(header.Alg)
	if !ok {
		return nil, invalidToken("The web identity token is signed with %q; only RS256, RS384, RS512, ES256, ES384 and ES512 are accepted.", clipValue(header.Alg))
	}
	prov := acct.oidcProvider(claims.Issuer)
	if prov == nil {
		return nil, invalidToken("No OpenIDConnect provider found in your account for %s", clipValue(claims.Issuer))
	}
	verified := false
	for _, k := range prov.keys {
		if header.Kid != "" && k.kid != header.Kid {
			continue
		}
		if k.verify(header.Alg, alg, signed, sig) {
			verified = true
			break
		}
	}
	if !verified {
		return nil, invalidToken("The web identity token signature could not be verified with the keys of %s.", prov.issuer)
	}
	audience := ""
	for _, a := range claims.Audience {
		if contains(prov.audiences, a) {
			audience = a
			break
		}
	}
	if audience == "" {
		return nil, invalidToken("Incorrect token audience")
	}
	if now.Unix() >= claims.Expires {
		return nil, stsErr(400, "ExpiredTokenException", "Token expired: current date/time %d must be before the expiration date/time %d", now.Unix(), claims.Expires)
	}
	if claims.NotBefore != nil && time.Unix(*claims.NotBefore, 0).After(now.Add(jwtLeeway)) {
		return nil, invalidToken("The web identity token is not valid yet (nbf is in the future).")
	}
	if claims.IssuedAt != nil && time.Unix(*claims.IssuedAt, 0).After(now.Add(jwtLeeway)) {
		return nil, invalidToken("The web identity token was issued in the future (iat).")
	}

	role, ok := acct.Role(in.RoleARN)
	// AWS's message for AssumeRoleWithWebIdentity names no principal (the
	// caller is anonymous); the reason goes to the log only.
	denied := stsErr(403, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
	if !ok {
		denied.Reason = "the role is not in the emulated account"
		return nil, denied
	}
	d := in.Duration
	if d == 0 {
		d = stsrules.DefaultDuration
	}
	if _, err := parseSessionPolicies(acct, in.Policy, in.PolicyARNs); err != nil {
		return nil, err
	}
	ctx := baseContext(now, in.SourceIP, in.SecureTransport)
	ctx["sts:RoleSessionName"] = []string{in.RoleSessionName}
	ctx["aws:FederatedProvider"] = []string{prov.arn}
	ctx["aws:PrincipalType"] = []string{"WebIdentityUser"}
	ctx[prov.hostPath+":sub"] = []string{claims.Subject}
	ctx[prov.hostPath+":aud"] = []string{audience}
	if len(claims.AMR) > 0 {
		ctx[prov.hostPath+":amr"] = claims.AMR
	}
	if in.Duration != 0 {
		ctx["sts:DurationSeconds"] = []string{fmt.Sprint(int(in.Duration.Seconds()))}
	}
	req := iampolicy.Request{
		Principal: iampolicy.Principal{Type: "Federated", ARN: prov.arn},
		Action:    "sts:AssumeRoleWithWebIdentity",
		Resource:  role.ARN,
		Context:   ctx,
	}
	if role.Trust.Evaluate(req).Decision != iampolicy.Allow {
		res, traces := iampolicy.Explain([]*iampolicy.Policy{role.Trust}, req)
		denied.Reason = denialReason("trust policy", req.Action, res, traces)
		return nil, denied
	}
	out, err := i.mint(&SessionClaims{
		Kind: "role", Account: acct.ID, RoleARN: role.ARN, SessionName: in.RoleSessionName,
		Issued: now.Unix(), Expires: now.Add(d).Unix(), SessionPolicy: in.Policy, PolicyARNs: in.PolicyARNs,
		WebIdentity: true,
	})
	if err != nil {
		return nil, err
	}
	return &WebIdentityResult{Issued: out, SubjectFromWebIdentityToken: claims.Subject, Provider: prov.arn, Audience: audience}, nil
}

// oidcProvider returns the provider whose issuer is iss.
func (a *Account) oidcProvider(iss string) *oidcProvider {
	iss = strings.TrimRight(iss, "/")
	for _, p := range a.oidc {
		if p.issuer == iss {
			return p
		}
	}
	return nil
}
