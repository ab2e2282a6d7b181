package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/credsidecar/credsidecar/iampolicy"
	"github.com/credsidecar/credsidecar/internal/charclass"
	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// Defaults of PRODUCT.md.
const (
	DefaultListen      = "127.0.0.1:8169"
	DefaultAdminListen = "127.0.0.1:8170"
	DefaultLocalListen = "127.0.0.1:8171"
	DefaultRegion      = "us-east-1"
	DefaultAccountID   = "000000000000"
	DefaultCaller      = "credsidecar"
	DefaultMaxEntries  = 10000
	DefaultErrorTTL    = 5 * time.Second
	DefaultMaxQPS      = 10
	// DefaultWarmMax: enough for every client a node usually runs (a
	// DaemonSet node holds tens of pods, a host tens of units), few enough
	// that a restart costs at most a few seconds of the default STS budget
	// (64 fetches at sts.max_qps 10, half the burst kept for callers).
	DefaultWarmMax     = 64
	DefaultDuration    = time.Hour
	DefaultSessionName = "{{.Client}}"
)

// Character classes of the AWS identifiers the config holds
// (internal/charclass: no regexps kept live for them).
var (
	digitChars     = charclass.Class(charclass.Digit)
	partitionChars = charclass.ASCII(false, "abcdefghijklmnopqrstuvwxyz-")
	iamNameChars   = charclass.ASCII(true, "+=,.@/-")
	keyIDChars     = charclass.ASCII(false, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
)

// validAccount reports whether s is an account ID: 12 digits.
func validAccount(s string) bool { return len(s) == 12 && digitChars.All(s) }

// validAccessKeyID reports whether s is a user's access key ID:
// AKIA and 16-124 of [A-Z0-9] (see userKeyIDNote).
func validAccessKeyID(s string) bool {
	rest, ok := strings.CutPrefix(s, "AKIA")
	return ok && len(rest) >= 16 && len(rest) <= 124 && keyIDChars.All(rest)
}

// parseIAMARN splits an IAM ARN of the given resource kind ("role",
// "policy"), arn:aws[a-z-]*:iam::ACCOUNT:KIND/NAME with ACCOUNT 12 digits
// (or "aws", AWS's managed policies, when awsOwned) and NAME one or more
// of [\w+=,.@/-]. ok is false for anything else.
func parseIAMARN(s, kind string, awsOwned bool) (account, name string, ok bool) {
	rest, ok := strings.CutPrefix(s, "arn:aws")
	if !ok {
		return "", "", false
	}
	partition, rest, ok := strings.Cut(rest, ":")
	if !ok || !partitionChars.All(partition) {
		return "", "", false
	}
	if rest, ok = strings.CutPrefix(rest, "iam::"); !ok {
		return "", "", false
	}
	account, rest, ok = strings.Cut(rest, ":")
	if !ok || !(validAccount(account) || awsOwned && account == "aws") {
		return "", "", false
	}
	name, ok = strings.CutPrefix(rest, kind+"/")
	if !ok || name == "" || !iamNameChars.All(name) {
		return "", "", false
	}
	return account, name, true
}

// validName reports whether s is a name of the config (a role, client,
// user, provider): ^[A-Za-z0-9][A-Za-z0-9_.@+=,-]{0,63}$, checked by hand
// since a config of ten thousand clients checks ten thousand of them.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && strings.IndexByte("_.@+=,-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// userKeyIDNote: a user's long-term key id. STS's API model allows 16-128
// word characters (accessKeyIdType); AWS's own are AKIA plus upper-case
// letters and digits, e.g. the documentation's AKIAI44QH8DHBEXAMPLE, which
// is not base32. Keys the emulator mints stay base32.
const userKeyIDNote = "AKIA followed by 16 to 124 characters A-Z or 0-9"

func (c *Config) fillDefaults() {
	if len(c.Listen) == 0 {
		c.Listen = []string{DefaultListen}
	}
	if c.AdminListen == "" {
		c.AdminListen = DefaultAdminListen
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.IMDS.Tokens == "" {
		c.IMDS.Tokens = TokensRequired
	}
	if c.InsecureFileModes == "" {
		c.InsecureFileModes = InsecureFileModesRefuse
	}
	if c.Cache.MaxEntries == 0 {
		c.Cache.MaxEntries = DefaultMaxEntries
	}
	if c.Cache.ErrorTTL == 0 {
		c.Cache.ErrorTTL = Duration(DefaultErrorTTL)
	}
	if c.Limits.PerClientRPS > 0 && c.Limits.Burst == 0 {
		// min keeps the conversion defined for huge (or infinite) rates.
		c.Limits.Burst = int(min(c.Limits.PerClientRPS, 1<<30)) + 1
	}
	if c.STS.Mode == "" {
		c.STS.Mode = ModeLocal
	}
	if c.STS.MaxQPS == 0 {
		c.STS.MaxQPS = DefaultMaxQPS
	}
	l := &c.STS.Local
	if l.Listen == "" {
		l.Listen = DefaultLocalListen
	}
	if l.AccountID == "" {
		l.AccountID = DefaultAccountID
	}
	if l.Caller == "" {
		l.Caller = DefaultCaller
	}
	for i := range c.Roles {
		r := &c.Roles[i]
		if r.Duration == 0 {
			r.Duration = Duration(DefaultDuration)
		}
		if r.SessionName == "" {
			r.SessionName = DefaultSessionName
		}
		if r.ARN == "" && c.STS.Mode == ModeLocal && r.Name != "" {
			r.ARN = fmt.Sprintf("arn:aws:iam::%s:role/%s", l.AccountID, r.Name)
		}
	}
}

type validator struct {
	root     *yaml.Node
	problems []Problem
	warnings []string
}

// line finds the YAML line of the value at path (mapping keys as strings,
// sequence indexes as ints), or of the nearest ancestor that exists.
func (v *validator) line(path ...any) int {
	n := v.root
	best := n.Line
	for _, p := range path {
		var next *yaml.Node
		switch k := p.(type) {
		case string:
			next = lookupKey(n, k, 0) // merged keys have their own lines
		case int:
			for d := 0; n.Kind == yaml.AliasNode && n.Alias != nil && d < 64; d++ {
				n = n.Alias
			}
			if n.Kind == yaml.SequenceNode && k < len(n.Content) {
				next = n.Content[k]
			}
		}
		if next == nil {
			return best
		}
		n = next
		best = n.Line
	}
	return best
}

// has reports whether the mapping keys of path are all in the file (an
// absent key takes its default; a zero written out is kept).
func (v *validator) has(path ...string) bool {
	n := v.root
	for _, k := range path {
		if n = lookupKey(n, k, 0); n == nil {
			return false
		}
	}
	return true
}

// lookupKey returns the value of key k in mapping n, following aliases
// and merge keys (`<<: *base` or `<<: [*a, *b]`) as the decoder does: a
// key written in the mapping itself wins over a merged one, and earlier
// merged mappings over later ones. depth bounds alias chains (a config
// with an alias cycle was refused before validation).
func lookupKey(n *yaml.Node, k string, depth int) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && depth < 64 {
		n, depth = n.Alias, depth+1
	}
	if n == nil || n.Kind != yaml.MappingNode || depth >= 64 {
		return nil
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i]
		if key.Tag == "!!merge" {
			merges = append(merges, n.Content[i+1])
			continue
		}
		if key.Value == k {
			return n.Content[i+1]
		}
	}
	for _, m := range merges {
		for m != nil && m.Kind == yaml.AliasNode && depth < 64 {
			m, depth = m.Alias, depth+1
		}
		if m == nil {
			continue
		}
		if m.Kind == yaml.SequenceNode {
			for _, e := range m.Content {
				if v := lookupKey(e, k, depth+1); v != nil {
					return v
				}
			}
			continue
		}
		if v := lookupKey(m, k, depth+1); v != nil {
			return v
		}
	}
	return nil
}

func (v *validator) errf(path []any, format string, args ...any) {
	v.problems = append(v.problems, Problem{Line: v.line(path...), Msg: fmt.Sprintf(format, args...)})
}

func p(path ...any) []any { return path }

func (v *validator) validate(c *Config) {
	for i, l := range c.Listen {
		v.checkListen(p("listen", i), "listen", l, c.AllowPublicListen)
	}
	v.checkListen(p("admin_listen"), "admin_listen", c.AdminListen, c.AllowPublicListen)
	if c.InsecureFileModes != InsecureFileModesRefuse && c.InsecureFileModes != InsecureFileModesWarn {
		v.errf(p("insecure_file_modes"), "insecure_file_modes must be %q or %q, not %q", InsecureFileModesRefuse, InsecureFileModesWarn, c.InsecureFileModes)
	}
	if c.STS.Local.SigningKeyFile != "" {
		c.STS.Local.signingKeyLine = v.line("sts", "local", "signing_key_file")
	}
	if c.IMDS.Tokens != TokensRequired && c.IMDS.Tokens != TokensOptional {
		v.errf(p("imds", "tokens"), "imds.tokens must be %q or %q, not %q", TokensRequired, TokensOptional, c.IMDS.Tokens)
	}
	if c.IMDS.HopLimit < 0 || c.IMDS.HopLimit > 64 {
		v.errf(p("imds", "hop_limit"), "imds.hop_limit must be 1..64 (0 = off), not %d", c.IMDS.HopLimit)
	}
	if c.Cache.MaxEntries < 1 {
		v.errf(p("cache", "max_entries"), "cache.max_entries must be at least 1")
	}
	if c.Cache.ErrorTTL < 0 {
		v.errf(p("cache", "error_ttl"), "cache.error_ttl must not be negative")
	}
	if c.Cache.WarmMax < 0 {
		v.errf(p("cache", "warm_max"), "cache.warm_max must be a count of sessions, 0 or more (0 = no warm-up), not %d", c.Cache.WarmMax)
	}
	if c.Limits.PerClientRPS < 0 || c.Limits.Burst < 0 || !finite(c.Limits.PerClientRPS) {
		v.errf(p("limits"), "limits.per_client_rps and limits.burst must be finite and not negative")
	}
	if c.Limits.MaxConnections < 0 || c.Limits.MaxConnectionsPerSource < 0 {
		v.errf(p("limits"), "limits.max_connections and limits.max_connections_per_source must not be negative (0 = the default)")
	}
	for i, h := range c.AllowedHosts {
		if h == "" || strings.ContainsAny(h, " /") {
			v.errf(p("allowed_hosts", i), "allowed_hosts: %q is not a host name", h)
		}
	}
	switch c.STS.Mode {
	case ModeLocal:
		v.validateLocal(c)
	case ModeAWS:
		if c.STS.Endpoint != "" {
			if u, err := url.Parse(c.STS.Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				v.errf(p("sts", "endpoint"), "sts.endpoint %q is not an http(s) URL", c.STS.Endpoint)
			}
		}
	default:
		v.errf(p("sts", "mode"), "sts.mode must be %q or %q, not %q", ModeLocal, ModeAWS, c.STS.Mode)
	}
	if c.STS.MaxQPS < 0 || !finite(c.STS.MaxQPS) {
		v.errf(p("sts", "max_qps"), "sts.max_qps must be a positive number")
	}
	v.validateRoles(c)
	v.validateIdentityProviders(c)
	v.validateClients(c)
	v.validateDocker(c)
	v.checkSessionNames(c)
}

// IsLocalAddr reports whether ip is an address credential listeners may
// bind without allow_public_listen: loopback, link-local, or AWS's IPv6
// metadata addresses.
func IsLocalAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsLinkLocalUnicast() {
		return true
	}
	return ip == netip.MustParseAddr("fd00:ec2::254") || ip == netip.MustParseAddr("fd00:ec2::23")
}

func (v *validator) checkListen(path []any, what, addr string, public bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.errf(path, "%s: %q is not host:port: %v", what, addr, err)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		v.errf(path, "%s: %q has an invalid port", what, addr)
		return
	}
	if host == "localhost" {
		return
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		v.errf(path, "%s: %q: use an IP address (or localhost), not a host name", what, addr)
		return
	}
	if !public && !IsLocalAddr(ip) {
		v.errf(path, "%s: %s is neither loopback nor link-local: credential endpoints must not reach a network (set allow_public_listen: true to override)", what, addr)
	}
}

func (v *validator) validateLocal(c *Config) {
	l := &c.STS.Local
	if !validAccount(l.AccountID) {
		v.errf(p("sts", "local", "account_id"), "sts.local.account_id must be 12 digits (quote it so YAML keeps leading zeros), not %q", l.AccountID)
	}
	v.checkListen(p("sts", "local", "listen"), "sts.local.listen", l.Listen, c.AllowPublicListen)
	if !validName(l.Caller) {
		v.errf(p("sts", "local", "caller"), "sts.local.caller %q is not a valid user name", l.Caller)
	}
	seen := map[string]bool{}
	keys := map[string]bool{}
	for i, u := range l.Users {
		if !validName(u.Name) {
			v.errf(p("sts", "local", "users", i, "name"), "user name %q is invalid", u.Name)
		}
		if seen[u.Name] {
			v.errf(p("sts", "local", "users", i, "name"), "user %q is defined twice", u.Name)
		}
		seen[u.Name] = true
		if !validAccessKeyID(u.AccessKeyID) {
			v.errf(p("sts", "local", "users", i, "access_key_id"), "user %q: access_key_id must be %s", u.Name, userKeyIDNote)
		}
		if keys[u.AccessKeyID] {
			v.errf(p("sts", "local", "users", i, "access_key_id"), "user %q: access_key_id is used twice", u.Name)
		}
		keys[u.AccessKeyID] = true
		if u.SecretAccessKey == (Secret{}) {
			v.errf(p("sts", "local", "users", i), "user %q: secret_access_key is required", u.Name)
		} else if u.SecretAccessKey.SHA256 != "" {
			v.errf(p("sts", "local", "users", i, "secret_access_key"), "user %q: a secret access key cannot be a sha256 reference (the emulator must sign with it)", u.Name)
		}
		for j, pol := range u.Policies {
			v.checkPolicy(p("sts", "local", "users", i, "policies", j), pol, false)
		}
		v.checkTags(p("sts", "local", "users", i, "tags"), u.Tags)
	}
	for i, o := range l.OIDCProviders {
		if u, err := url.Parse(o.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
			v.errf(p("sts", "local", "oidc_providers", i, "issuer"), "oidc issuer %q must be an https URL", o.Issuer)
		}
		if o.JWKSFile == "" {
			v.errf(p("sts", "local", "oidc_providers", i), "oidc provider %q: jwks_file is required", o.Issuer)
		}
	}
	for name, pol := range l.ManagedPolicies {
		if !validName(name) {
			v.errf(p("sts", "local", "managed_policies", name), "managed policy name %q is invalid", name)
		}
		v.checkPolicy(p("sts", "local", "managed_policies", name), pol, false)
	}
}

func (v *validator) validateRoles(c *Config) {
	names := map[string]int{}
	for i := range c.Roles {
		r := &c.Roles[i]
		r.Line = v.line("roles", i)
		at := func(k ...any) []any { return append(p("roles", i), k...) }
		if !validName(r.Name) {
			v.errf(at("name"), "role name %q is invalid (letters, digits and _.@+=,- only)", r.Name)
		}
		if _, dup := names[r.Name]; dup {
			v.errf(at("name"), "role %q is defined twice", r.Name)
		}
		names[r.Name] = i
		if account, _, ok := parseIAMARN(r.ARN, "role", false); !ok {
			v.errf(at("arn"), "role %q: arn %q is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)", r.Name, r.ARN)
		} else if c.STS.Mode == ModeLocal && account != c.STS.Local.AccountID {
			v.errf(at("arn"), "role %q: local mode emulates account %s, not %s", r.Name, c.STS.Local.AccountID, account)
		}
		// Local mode goes down to MinLocalDuration so users can watch their
		// apps refresh.
		lo := stsrules.MinDuration
		if c.STS.Mode == ModeLocal {
			lo = stsrules.MinLocalDuration
		}
		d := r.Duration.D()
		if d < lo || d > stsrules.MaxDuration {
			v.errf(at("duration"), "role %q: duration %s is outside %s..%s", r.Name, d, lo, stsrules.MaxDuration)
		} else if stale := stsrules.StaleWindow; d < 2*stale {
			// Sessions shorter than twice the stale window cannot keep
			// callers out of it.
			v.warnings = append(v.warnings, fmt.Sprintf("line %d: role %q: duration %s is under %s, so callers will hold credentials that SDKs consider stale (under %s left) part of the time", v.line(at("duration")...), r.Name, d, 2*stale, stale))
		}
		if d%time.Second != 0 {
			v.errf(at("duration"), "role %q: duration must be whole seconds", r.Name)
		}
		tmpl, err := template.New(r.Name).Option("missingkey=error").Parse(r.SessionName)
		if err != nil {
			v.errf(at("session_name"), "role %q: session_name template: %v", r.Name, err)
		} else {
			r.SessionTemplate = tmpl
		}
		if r.ExternalID != "" && (len(r.ExternalID) < 2 || len(r.ExternalID) > 1224 || !stsrules.ExternalIDChars.All(r.ExternalID)) {
			v.errf(at("external_id"), "role %q: external_id must be 2-1224 characters of [\\w+=,.@:/-]", r.Name)
		}
		if r.SourceIdentity != "" && (!stsrules.ValidSessionName(r.SourceIdentity) || stsrules.ReservedSourceIdentity(r.SourceIdentity)) {
			v.errf(at("source_identity"), "role %q: source_identity must be 2-64 characters of [\\w+=,.@-] and not start with aws:", r.Name)
		}
		if len(r.PolicyARNs) > 10 {
			v.errf(at("policy_arns"), "role %q: at most 10 policy_arns", r.Name)
		}
		for j, a := range r.PolicyARNs {
			if _, _, ok := parseIAMARN(a, "policy", true); !ok {
				v.errf(at("policy_arns", j), "role %q: %q is not a policy ARN", r.Name, a)
			}
		}
		v.checkTags(at("tags"), v.parseTagTemplates(at("tags"), r))
		v.checkTags(at("role_tags"), r.RoleTags)
		if len(r.Tags) > stsrules.MaxTags {
			v.errf(at("tags"), "role %q: at most %d session tags", r.Name, stsrules.MaxTags)
		}
		for j, k := range r.TransitiveTagKeys {
			if _, ok := lookupFold(r.Tags, k); !ok {
				v.errf(at("transitive_tag_keys", j), "role %q: transitive tag key %q is not among its tags", r.Name, k)
			}
		}
		if r.SessionPolicy != nil {
			v.checkPolicy(at("session_policy"), *r.SessionPolicy, false)
		}
		if r.TrustPolicy != nil {
			if c.STS.Mode != ModeLocal {
				v.warnings = append(v.warnings, fmt.Sprintf("line %d: role %q: trust_policy is used only in local mode", r.Line, r.Name))
			}
			v.checkPolicy(at("trust_policy"), *r.TrustPolicy, true)
		}
		for j, pol := range r.PermissionPolicies {
			v.checkPolicy(at("permission_policies", j), pol, false)
		}
		if r.Via != "" && r.WebIdentityTokenFile != "" {
			v.errf(at("via"), "role %q: via and web_identity_token_file exclude each other", r.Name)
		}
	}
	// Chains: via must name a role, without cycles, and chained sessions are capped at 1h.
	for i := range c.Roles {
		r := &c.Roles[i]
		if r.Via == "" {
			continue
		}
		if _, ok := names[r.Via]; !ok {
			v.errf(p("roles", i, "via"), "role %q: via names unknown role %q", r.Name, r.Via)
			continue
		}
		if r.Duration.D() > stsrules.ChainMaxDuration {
			v.errf(p("roles", i, "duration"), "role %q: a chained session (via) lasts at most %s", r.Name, stsrules.ChainMaxDuration)
		}
		seen := map[string]bool{r.Name: true}
		for cur := r.Via; cur != ""; {
			if seen[cur] {
				v.errf(p("roles", i, "via"), "role %q: via forms a cycle through %q", r.Name, cur)
				break
			}
			seen[cur] = true
			j, ok := names[cur]
			if !ok {
				break
			}
			cur = c.Roles[j].Via
		}
	}
}

func (v *validator) validateClients(c *Config) {
	names := map[string]bool{}
	for i := range c.Clients {
		cl := &c.Clients[i]
		cl.Line = v.line("clients", i)
		at := func(k ...any) []any { return append(p("clients", i), k...) }
		if !validName(cl.Name) {
			v.errf(at("name"), "client name %q is invalid (letters, digits and _.@+=,- only)", cl.Name)
		}
		if names[cl.Name] {
			v.errf(at("name"), "client %q is defined twice", cl.Name)
		}
		names[cl.Name] = true
		if cl.Match.Empty() {
			v.errf(at("match"), "client %q: match needs at least one of token, source_cidrs, uids, jwt, systemd_unit, systemd_user_unit, cgroup, exe, exe_sha256, container (an empty match would trust every caller)", cl.Name)
		}
		v.checkJWTMatch(c, at("match", "jwt"), cl)
		v.validateWorkload(cl, at)
		if len(cl.Roles) == 0 {
			v.errf(at("roles"), "client %q: roles must list at least one role (the first is the default)", cl.Name)
		}
		for j, rn := range cl.Roles {
			if _, ok := c.RoleByName(rn); !ok {
				v.errf(at("roles", j), "client %q: unknown role %q", cl.Name, rn)
			}
		}
	}
}

func (v *validator) checkTags(path []any, tags map[string]string) {
	for k, val := range tags {
		if !stsrules.ValidTagKey(k) {
			v.errf(append(path, k), "tag key %q is invalid (1-128 characters of letters, digits, spaces and _.:/=+-@)", k)
		}
		if !stsrules.ValidTagValue(val) {
			v.errf(append(path, k), "tag %q: value is invalid (0-256 characters of letters, digits, spaces and _.:/=+-@*)", k)
		}
	}
}

// checkPolicy validates a policy document with the IAM grammar. A policy
// written as a YAML mapping is reported at the line of the element at
// fault; one written as a JSON string, at the string's line.
func (v *validator) checkPolicy(path []any, pol Policy, trust bool) {
	if err := policyCheck(pol.JSON, trust); err != nil {
		line := pol.Line
		if line == 0 {
			line = v.line(path...)
		}
		var me *iampolicy.MalformedError
		if errors.As(err, &me) && me.Path != "" {
			if l := v.line(append(append([]any{}, path...), policyPath(me.Path)...)...); l > line {
				line = l
			}
		}
		v.problems = append(v.problems, Problem{Line: line, Msg: err.Error()})
	}
}

// policyPath splits an iampolicy element path such as
// "Statement[1].NotPrincipal" into YAML path elements ("Statement", 1,
// "NotPrincipal"). Keys holding dots split wrongly and so stop the walk
// early, at an enclosing element: the line is then less precise, not wrong.
func policyPath(s string) []any {
	var out []any
	for _, part := range strings.Split(s, ".") {
		name, rest, _ := strings.Cut(part, "[")
		out = append(out, name)
		for rest != "" {
			idx, tail, _ := strings.Cut(rest, "]")
			n, err := strconv.Atoi(idx)
			if err != nil {
				return out
			}
			out = append(out, n)
			rest = strings.TrimPrefix(tail, "[")
		}
	}
	return out
}

// finite reports whether f is neither NaN nor infinite (YAML has .nan and .inf).
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func lookupFold(m map[string]string, k string) (string, bool) {
	for mk, mv := range m {
		if strings.EqualFold(mk, k) {
			return mv, true
		}
	}
	return "", false
}
