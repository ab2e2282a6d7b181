// Package config is credsidecar's YAML schema: the Go types of the contract in
// PRODUCT.md, their defaults, strict decoding (unknown keys are errors), and
// validation that names the YAML line of every problem. Parsing is a pure
// function of bytes; secret references are resolved in a separate step so that
// tests and check-config can see both kinds of problems.
package config

import (
	"net/netip"
	"text/template"
	"time"
)

// Token modes of the IMDS listener.
const (
	TokensRequired = "required"
	TokensOptional = "optional"
)

// STS modes.
const (
	ModeLocal = "local"
	ModeAWS   = "aws"
)

// Config is one validated, immutable configuration. A reload builds a new one.
type Config struct {
	Listen            []string `yaml:"listen"`
	AdminListen       string   `yaml:"admin_listen"`
	AllowPublicListen bool     `yaml:"allow_public_listen"`
	// AllowedHosts are extra Host header values accepted on credential paths.
	AllowedHosts []string `yaml:"allowed_hosts"`
	Region       string   `yaml:"region"`
	// AuditLog is the path of the JSON-lines audit file; "" disables it.
	AuditLog string   `yaml:"audit_log"`
	IMDS     IMDS     `yaml:"imds"`
	Cache    Cache    `yaml:"cache"`
	Limits   Limits   `yaml:"limits"`
	STS      STS      `yaml:"sts"`
	Roles    []Role   `yaml:"roles"`
	Clients  []Client `yaml:"clients"`
	// Docker is the Engine API that container matches ask.
	Docker Docker `yaml:"docker"`
	// InsecureFileModes is what a secret file (a token file, a
	// secret_access_key file, the signing key) that other users can read
	// or replace does: "refuse" (the default) makes it a config error,
	// "warn" a warning.
	InsecureFileModes string `yaml:"insecure_file_modes"`
	// IdentityProviders issue the bearer JWTs that match.jwt accepts.
	IdentityProviders []IdentityProvider `yaml:"identity_providers"`

	// Path is the file the config was read from ("" when parsed from bytes).
	Path string `yaml:"-"`
	// Warnings are non-fatal findings (check-config prints them).
	Warnings []string `yaml:"-"`

	// snap holds the bytes the config was built from (nil when parsed from
	// bytes); immutable, shared by copies.
	snap *snapshot
}

// IMDS configures the EC2 metadata endpoints.
type IMDS struct {
	// Tokens is "required" (IMDSv2 only, the default) or "optional" (v1 too).
	Tokens string `yaml:"tokens"`
	// HopLimit is the IP TTL of token PUT responses; 0 leaves the OS default.
	HopLimit int `yaml:"hop_limit"`
}

// Cache bounds the credential cache.
type Cache struct {
	MaxEntries int      `yaml:"max_entries"`
	ErrorTTL   Duration `yaml:"error_ttl"`
	// WarmMax bounds the sessions fetched ahead of any caller at start and
	// after a reload (DefaultWarmMax when the key is absent; 0 = none).
	WarmMax int `yaml:"warm_max"`
}

// Limits configures per-caller request rate limiting (off when PerClientRPS is 0).
type Limits struct {
	PerClientRPS float64 `yaml:"per_client_rps"`
	Burst        int     `yaml:"burst"`
	// MaxConnections bounds the connections the credential listeners hold
	// together (0 = the default, 2048; never above what the descriptor
	// limit allows). MaxConnectionsPerSource bounds one local uid's (or,
	// when it is unknown, one address prefix's) once half are held.
	MaxConnections          int `yaml:"max_connections"`
	MaxConnectionsPerSource int `yaml:"max_connections_per_source"`
}

// STS selects and configures the credential source.
type STS struct {
	Mode     string  `yaml:"mode"`
	Endpoint string  `yaml:"endpoint"`
	Profile  string  `yaml:"profile"`
	MaxQPS   float64 `yaml:"max_qps"`
	Local    Local   `yaml:"local"`
}

// Local describes the emulated account of local mode.
type Local struct {
	Listen          string            `yaml:"listen"`
	AccountID       string            `yaml:"account_id"`
	SigningKeyFile  string            `yaml:"signing_key_file"`
	Caller          string            `yaml:"caller"`
	OIDCProviders   []OIDCProvider    `yaml:"oidc_providers"`
	Users           []User            `yaml:"users"`
	ManagedPolicies map[string]Policy `yaml:"managed_policies"`

	// signingKeyLine is the YAML line of signing_key_file (filled by
	// validation), for problems found when the file is read.
	signingKeyLine int
}

// OIDCProvider is an identity provider trusted for AssumeRoleWithWebIdentity.
type OIDCProvider struct {
	Issuer    string   `yaml:"issuer"`
	Audiences []string `yaml:"audiences"`
	JWKSFile  string   `yaml:"jwks_file"`
}

// User is an IAM user of the emulated account, with long-term keys.
type User struct {
	Name            string            `yaml:"name"`
	AccessKeyID     string            `yaml:"access_key_id"`
	SecretAccessKey Secret            `yaml:"secret_access_key"`
	Policies        []Policy          `yaml:"policies"`
	Tags            map[string]string `yaml:"tags"`
}

// Role is a role callers may ask for by Name.
type Role struct {
	Name                 string            `yaml:"name"`
	ARN                  string            `yaml:"arn"`
	Duration             Duration          `yaml:"duration"`
	SessionName          string            `yaml:"session_name"`
	ExternalID           string            `yaml:"external_id"`
	SourceIdentity       string            `yaml:"source_identity"`
	SessionPolicy        *Policy           `yaml:"session_policy"`
	PolicyARNs           []string          `yaml:"policy_arns"`
	Tags                 map[string]string `yaml:"tags"`
	TransitiveTagKeys    []string          `yaml:"transitive_tag_keys"`
	Via                  string            `yaml:"via"`
	WebIdentityTokenFile string            `yaml:"web_identity_token_file"`
	TrustPolicy          *Policy           `yaml:"trust_policy"`
	PermissionPolicies   []Policy          `yaml:"permission_policies"`
	// RoleTags are the role's own IAM tags (local mode: aws:PrincipalTag of its sessions).
	RoleTags map[string]string `yaml:"role_tags"`

	// SessionTemplate is SessionName parsed (filled by validation).
	SessionTemplate *template.Template `yaml:"-"`
	// TagTemplates are the Tags whose values are templates ({{ ... }}),
	// parsed (filled by validation); rendered per caller.
	TagTemplates map[string]*template.Template `yaml:"-" json:"-"`
	// Line is the YAML line of the role's entry.
	Line int `yaml:"-"`
}

// Client is one entry of the trust config: who a caller is and which roles it gets.
type Client struct {
	Name  string   `yaml:"name"`
	Match Match    `yaml:"match"`
	Roles []string `yaml:"roles"`
	// Line is the YAML line of the client's entry.
	Line int `yaml:"-"`
}

// Match holds the conditions that identify a client; all given must hold.
type Match struct {
	Token       *Secret  `yaml:"token"`
	SourceCIDRs []Prefix `yaml:"source_cidrs"`
	UIDs        []uint32 `yaml:"uids"`
	// Workload holds the conditions on the host process or container
	// behind the connection (workload.go).
	Workload `yaml:",inline"`
	// JWT matches a bearer JWT verified against an identity provider.
	JWT *JWTMatch `yaml:"jwt"`
}

// Empty reports whether the match has no condition at all.
func (m Match) Empty() bool {
	return m.Token == nil && len(m.SourceCIDRs) == 0 && len(m.UIDs) == 0 && m.JWT == nil && m.Workload.Empty()
}

// Duration is a time.Duration written as a Go duration string.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Prefix is a CIDR (a bare address means a single host).
type Prefix struct{ netip.Prefix }

// Policy is an IAM policy document as JSON text, whichever form the YAML used.
type Policy struct {
	// JSON is the document; YAML scalars keep their source text.
	JSON string
	// Line is where the policy starts in the YAML file (not part of the
	// policy: moving it does not change a role's definition).
	Line int `json:"-"`
}

// Secret is a value given literally or by reference. Exactly one of the
// source fields is set; Resolve fills Value (or Hash for sha256 references).
type Secret struct {
	Literal string
	Env     string
	File    string
	// SHA256 is a hex digest: the secret itself is never stored.
	SHA256 string
	Line   int

	// Value is the resolved secret ("" for sha256 references).
	Value string
}

// Source describes where the secret comes from, without revealing it.
func (s Secret) Source() string {
	switch {
	case s.Env != "":
		return "env:" + s.Env
	case s.File != "":
		return "file:" + s.File
	case s.SHA256 != "":
		return "sha256"
	default:
		return "literal"
	}
}

// RoleByName returns the role called name.
func (c *Config) RoleByName(name string) (*Role, bool) {
	for i := range c.Roles {
		if c.Roles[i].Name == name {
			return &c.Roles[i], true
		}
	}
	return nil, false
}
