package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"text/template"
	"time"
)

// DefaultMaxTokenLifetime bounds exp - iat of a provider's tokens when
// max_token_lifetime is not set.
const DefaultMaxTokenLifetime = 24 * time.Hour

// maxClaimsDepth bounds the nesting of match.jwt.claims.
const maxClaimsDepth = 8

// IdentityProvider is an issuer of bearer JWTs (a Kubernetes cluster's
// service-account issuer, any OIDC provider) that match.jwt trusts.
type IdentityProvider struct {
	Name string `yaml:"name"`
	// Issuer is the exact iss of its tokens (required: go-jose skips the
	// issuer check when the expected one is empty).
	Issuer string `yaml:"issuer"`
	// Audiences: a token's aud must contain one of them.
	Audiences []string `yaml:"audiences"`
	// JWKSFile or JWKSURL holds the signing keys; with neither, a
	// Kubernetes provider reads api_url's /openid/v1/jwks.
	JWKSFile string `yaml:"jwks_file"`
	JWKSURL  string `yaml:"jwks_url"`
	// MaxTokenLifetime bounds exp - iat (default 24h).
	MaxTokenLifetime Duration `yaml:"max_token_lifetime"`
	// Kubernetes configures the API server: JWKS discovery, TokenReview.
	Kubernetes *KubernetesProvider `yaml:"kubernetes"`
	// Line is the YAML line of the provider's entry.
	Line int `yaml:"-"`
}

// KubernetesProvider is the API server behind a service-account issuer.
type KubernetesProvider struct {
	APIURL string `yaml:"api_url"`
	// CAFile verifies the API server's certificate (and a jwks_url's).
	CAFile string `yaml:"ca_file"`
	// BearerTokenFile is the sidecar's own token, re-read on every use.
	BearerTokenFile string `yaml:"bearer_token_file"`
	// TokenReview also asks the API server whether each token is still
	// valid (its pod still exists), caching each answer for at most 30s.
	TokenReview bool `yaml:"token_review"`
	// NodeName, when set, must equal the token's kubernetes.io node name
	// (typically { env: NODE_NAME } from the downward API), so a token
	// taken from a pod on another node is useless here.
	NodeName *Secret `yaml:"node_name"`
}

// JWTMatch is match.jwt: the bearer token is a JWT verified against
// Provider whose sub and claims match the globs.
type JWTMatch struct {
	Provider string `yaml:"provider"`
	// Subject is a glob on sub ("" = any subject).
	Subject string `yaml:"subject"`
	// Claims are nested maps whose leaves are globs on the token's claims
	// at the same path; every leaf must match.
	Claims map[string]any `yaml:"claims"`
}

// IdentityProviderByName returns the provider called name.
func (c *Config) IdentityProviderByName(name string) (*IdentityProvider, bool) {
	for i := range c.IdentityProviders {
		if c.IdentityProviders[i].Name == name {
			return &c.IdentityProviders[i], true
		}
	}
	return nil, false
}

// JWKSSource is where the provider's keys come from: a file, a URL, or
// "" when none is configured.
func (p *IdentityProvider) JWKSSource() (file, url string) {
	switch {
	case p.JWKSFile != "":
		return p.JWKSFile, ""
	case p.JWKSURL != "":
		return "", p.JWKSURL
	case p.Kubernetes != nil && p.Kubernetes.APIURL != "":
		return "", strings.TrimRight(p.Kubernetes.APIURL, "/") + "/openid/v1/jwks"
	}
	return "", ""
}

// BearerToJWKS reports whether the sidecar's own bearer token
// (kubernetes.bearer_token_file) goes with the JWKS fetch: always to the
// API server's own discovery URL, to a jwks_url only when no api_url is
// set (the token is then configured for that URL alone) or when the
// jwks_url is on the API server's origin (scheme, host and port). A
// jwks_url elsewhere (a public OIDC issuer's) needs no credential, and
// must not receive the sidecar's service-account token.
func (p *IdentityProvider) BearerToJWKS() bool {
	k := p.Kubernetes
	if k == nil || k.BearerTokenFile == "" {
		return false
	}
	_, u := p.JWKSSource()
	if u == "" {
		return false
	}
	if p.JWKSURL == "" || k.APIURL == "" {
		return true
	}
	return sameOrigin(p.JWKSURL, k.APIURL)
}

// sameOrigin reports whether URLs a and b have the same scheme, host and
// port (the default port spelled out or not).
func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err1 != nil || err2 != nil {
		return false
	}
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "http") {
			return "80"
		}
		return "443"
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Hostname(), ub.Hostname()) && port(ua) == port(ub)
}

// UsesJWT reports whether some client matches on jwt: only then are
// bearer tokens verified as JWTs.
func (c *Config) UsesJWT() bool {
	for i := range c.Clients {
		if c.Clients[i].Match.JWT != nil {
			return true
		}
	}
	return false
}

func (c *Config) identityFiles() []string {
	var out []string
	for _, p := range c.IdentityProviders {
		if p.JWKSFile != "" {
			out = append(out, p.JWKSFile)
		}
		if k := p.Kubernetes; k != nil && k.CAFile != "" {
			out = append(out, k.CAFile)
		}
	}
	return out
}

// checkHTTPSURL accepts https URLs, and http ones only to a loopback host.
func checkHTTPSURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if a, err := netip.ParseAddr(host); (err == nil && a.IsLoopback()) || host == "localhost" {
			return nil
		}
		return fmt.Errorf("%q: plain http only to a loopback address; use https", raw)
	}
	return fmt.Errorf("%q: the scheme must be https", raw)
}

func (v *validator) validateIdentityProviders(c *Config) {
	names := map[string]bool{}
	issuers := map[string]string{}
	for i := range c.IdentityProviders {
		ip := &c.IdentityProviders[i]
		ip.Line = v.line("identity_providers", i)
		at := func(k ...any) []any { return append(p("identity_providers", i), k...) }
		if ip.MaxTokenLifetime == 0 {
			ip.MaxTokenLifetime = Duration(DefaultMaxTokenLifetime)
		}
		if !validName(ip.Name) {
			v.errf(at("name"), "identity provider name %q is invalid (letters, digits and _.@+=,- only)", ip.Name)
		}
		if names[ip.Name] {
			v.errf(at("name"), "identity provider %q is defined twice", ip.Name)
		}
		names[ip.Name] = true
		if ip.Issuer == "" {
			v.errf(at("issuer"), "identity provider %q: issuer is required (tokens are matched to a provider by their exact iss)", ip.Name)
		} else if first, dup := issuers[ip.Issuer]; dup {
			v.errf(at("issuer"), "identity providers %q and %q have the same issuer %q", first, ip.Name, ip.Issuer)
		} else {
			issuers[ip.Issuer] = ip.Name
		}
		if len(ip.Audiences) == 0 {
			v.errf(at("audiences"), "identity provider %q: audiences must list at least one audience", ip.Name)
		}
		for j, a := range ip.Audiences {
			if a == "" {
				v.errf(at("audiences", j), "identity provider %q: an audience must not be empty", ip.Name)
			}
		}
		if d := ip.MaxTokenLifetime.D(); d < time.Minute || d > 7*24*time.Hour {
			v.errf(at("max_token_lifetime"), "identity provider %q: max_token_lifetime %s is outside 1m..168h", ip.Name, d)
		}
		if ip.JWKSFile != "" && ip.JWKSURL != "" {
			v.errf(at("jwks_url"), "identity provider %q: jwks_file and jwks_url exclude each other", ip.Name)
		}
		if ip.JWKSURL != "" {
			if err := checkHTTPSURL(ip.JWKSURL); err != nil {
				v.errf(at("jwks_url"), "identity provider %q: jwks_url %v", ip.Name, err)
			}
		}
		k := ip.Kubernetes
		if k != nil && k.APIURL != "" {
			if err := checkHTTPSURL(k.APIURL); err != nil {
				v.errf(at("kubernetes", "api_url"), "identity provider %q: kubernetes.api_url %v", ip.Name, err)
			}
		}
		if k != nil && k.BearerTokenFile != "" && ip.JWKSURL != "" && k.APIURL != "" && !ip.BearerToJWKS() {
			v.warnings = append(v.warnings, fmt.Sprintf("line %d: identity provider %q: jwks_url is not on kubernetes.api_url's server, so kubernetes.bearer_token_file is not sent with its fetches (only to api_url)", v.line(at("jwks_url")...), ip.Name))
		}
		if k != nil && k.TokenReview && k.APIURL == "" {
			v.errf(at("kubernetes", "token_review"), "identity provider %q: token_review needs kubernetes.api_url", ip.Name)
		}
		if f, u := ip.JWKSSource(); f == "" && u == "" {
			v.errf(at(), "identity provider %q: needs jwks_file, jwks_url or kubernetes.api_url", ip.Name)
		}
	}
}

func (v *validator) checkJWTMatch(c *Config, path []any, cl *Client) {
	m := cl.Match.JWT
	if m == nil {
		return
	}
	if cl.Match.Token != nil {
		v.errf(path, "client %q: match.jwt and match.token exclude each other (both are the bearer token)", cl.Name)
	}
	if _, ok := c.IdentityProviderByName(m.Provider); !ok {
		v.errf(append(path, "provider"), "client %q: match.jwt.provider %q is not an identity_providers entry", cl.Name, m.Provider)
	}
	v.checkClaims(append(path, "claims"), cl.Name, m.Claims, 1)
}

func (v *validator) checkClaims(path []any, client string, claims map[string]any, depth int) {
	if depth > maxClaimsDepth {
		v.errf(path, "client %q: match.jwt.claims is nested more than %d levels", client, maxClaimsDepth)
		return
	}
	for k, val := range claims {
		switch x := val.(type) {
		case string:
		case map[string]any:
			v.checkClaims(append(append([]any{}, path...), k), client, x, depth+1)
		default:
			v.errf(append(append([]any{}, path...), k), "client %q: match.jwt.claims.%s must be a glob string or a mapping, not %T", client, k, val)
		}
	}
}

// parseTagTemplates parses the role's tag values that are templates into
// r.TagTemplates and returns the constant tags, for checkTags.
func (v *validator) parseTagTemplates(path []any, r *Role) map[string]string {
	constant := make(map[string]string, len(r.Tags))
	for k, val := range r.Tags {
		if !strings.Contains(val, "{{") {
			constant[k] = val
			continue
		}
		// The key is still checked; a rendered value is made valid per caller.
		constant[k] = ""
		tmpl, err := template.New(r.Name + "/" + k).Option("missingkey=zero").Parse(val)
		if err != nil {
			v.errf(append(append([]any{}, path...), k), "role %q: tag %q template: %v", r.Name, k, err)
			continue
		}
		if r.TagTemplates == nil {
			r.TagTemplates = map[string]*template.Template{}
		}
		r.TagTemplates[k] = tmpl
	}
	return constant
}
