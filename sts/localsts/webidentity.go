package localsts

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/credsidecar/credsidecar/iampolicy"
	"github.com/credsidecar/credsidecar/jwtauth"
	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// Limits of web identity tokens and JWKS files.
const (
	minWebIdentityToken = 4
	maxWebIdentityToken = 20000
	maxJWKSFile         = jwtauth.MaxJWKSSize
	// jwtLeeway is how far in the future iat and nbf may lie: the IdP's
	// clock is not ours.
	jwtLeeway = 5 * time.Minute
)

// webIdentityAlgorithms are the algorithms STS accepts for web identity
// tokens (RS256/384/512, ES256/384/512).
var webIdentityAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512}

// oidcProvider is a compiled sts.local.oidc_providers entry.
type oidcProvider struct {
	issuer    string // as configured, without a trailing slash
	hostPath  string // issuer without scheme: the condition key prefix
	arn       string // arn:aws:iam::ACCT:oidc-provider/<hostPath>
	audiences []string
	keys      *jwtauth.KeySet
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

// parseJWKS reads the RSA and EC signing keys of a JSON Web Key Set with
// the project's one JWT library (jwtauth, go-jose): keys of other types,
// or meant for encryption, are skipped; a set with no usable key is an
// error.
func parseJWKS(data []byte) (*jwtauth.KeySet, error) { return jwtauth.ParseJWKS(data) }

func invalidToken(format string, args ...any) *Error {
	return stsErr(400, "InvalidIdentityToken", format, args...)
}

// webIdentityClaims are the verified JWT claims STS looks at.
type webIdentityClaims struct {
	Subject  string
	Audience string
	AMR      []string
}

// verifyWebIdentity checks the token's signature with the keys of the
// provider whose issuer is its iss (jwtauth), then what STS adds: integer
// timestamps, and ExpiredTokenException for an expired token.
func (a *Account) verifyWebIdentity(token string, now time.Time) (*oidcProvider, *webIdentityClaims, *Error) {
	parsed, err := jwtauth.Parse(token, webIdentityAlgorithms)
	if err != nil {
		return nil, nil, invalidFromJWT(err)
	}
	prov := a.oidcProvider(parsed.Issuer)
	if prov == nil {
		return nil, nil, invalidToken("No OpenIDConnect provider found in your account for %s", clipValue(parsed.Issuer))
	}
	pol := jwtauth.Policy{Issuer: parsed.Issuer, Audiences: prov.audiences, Leeway: jwtLeeway, Algorithms: webIdentityAlgorithms}
	c, err := parsed.Verify(prov.keys, pol, now)
	if r := jwtauth.ReasonOf(err); r == 0 || r == jwtauth.ReasonExpired {
		// The signature held (jwtauth checks it before the claims); STS
		// wants integer timestamps.
		for _, k := range []string{"exp", "nbf", "iat"} {
			if v, ok := parsed.Claim(k); ok {
				if f, ok := v.(float64); !ok || f != math.Trunc(f) {
					return nil, nil, invalidToken("The web identity token claim %s must be an integer number of seconds.", k)
				}
			}
		}
	}
	switch jwtauth.ReasonOf(err) {
	case 0:
	case jwtauth.ReasonAudience:
		return nil, nil, invalidToken("Incorrect token audience")
	case jwtauth.ReasonExpired:
		exp, _ := parsed.Expiry()
		return nil, nil, expiredToken(now, exp)
	default:
		return nil, nil, invalidFromJWT(err)
	}
	// STS gives exp no leeway.
	if !now.Before(c.Expiry) {
		return nil, nil, expiredToken(now, c.Expiry.Unix())
	}
	return prov, &webIdentityClaims{Subject: c.Subject, Audience: c.Audience, AMR: stringOrList(c.All["amr"])}, nil
}

func expiredToken(now time.Time, exp int64) *Error {
	return stsErr(400, "ExpiredTokenException", "Token expired: current date/time %d must be before the expiration date/time %d", now.Unix(), exp)
}

// invalidFromJWT is the STS error of a jwtauth failure.
func invalidFromJWT(err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "jwt: ")
	return invalidToken("The web identity token is not valid: %s.", msg)
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
	prov, claims, verr := acct.verifyWebIdentity(in.WebIdentityToken, now)
	if verr != nil {
		return nil, verr
	}
	audience := claims.Audience

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
