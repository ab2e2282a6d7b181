// Package localsts is the embedded STS emulator of local mode: an emulated
// account (users with long-term keys, roles with trust and permission
// policies), an issuer that mints and verifies temporary credentials
// statelessly, the authorization IAM applies to AssumeRole, and a Source
// that calls it in process for the agent.
package localsts

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/iampolicy"
)

// Account is the emulated AWS account, compiled from a config. Immutable.
type Account struct {
	ID     string
	users  map[string]*User // by access key id
	byName map[string]*User
	roles  map[string]*Role // by role ARN
	// managed holds sts.local.managed_policies by ARN.
	managed map[string]*iampolicy.Policy
	// Caller is the user the sidecar itself acts as.
	Caller *User
	// oidc are the providers of AssumeRoleWithWebIdentity, with the keys
	// read from their jwks_file when the account was built.
	oidc []*oidcProvider
}

// User is an IAM user of the emulated account.
type User struct {
	Name            string
	ARN             string
	ID              string // AIDA...
	AccessKeyID     string
	SecretAccessKey string
	Policies        []*iampolicy.Policy
	Tags            map[string]string
}

// Role is an IAM role of the emulated account.
type Role struct {
	Name        string // the last path segment of the ARN
	ARN         string
	ID          string // AROA...
	Trust       *iampolicy.Policy
	Permissions []*iampolicy.Policy
	Tags        map[string]string
}

// uniqueID derives an IAM-style unique id (prefix + 17 base32 chars).
func uniqueID(prefix, seed string) string {
	h := sha256.Sum256([]byte(seed))
	return prefix + base32.StdEncoding.EncodeToString(h[:])[:17]
}

// NewAccount compiles the emulated account of cfg. The sidecar's own caller
// user is created with random keys when the config does not define it (the
// in-process source never needs its keys). The JWKS files of the OIDC
// providers come from cfg's snapshot (config.Config.ReadFile: a config
// parsed from bytes reads them now): a config reload that rebuilds the
// account has them as read with the config, and an unreadable or invalid
// one fails the build.
func NewAccount(cfg *config.Config, randomKey func() (string, string)) (*Account, error) {
	l := cfg.STS.Local
	a := &Account{
		ID:      l.AccountID,
		users:   map[string]*User{},
		byName:  map[string]*User{},
		roles:   map[string]*Role{},
		managed: map[string]*iampolicy.Policy{},
	}
	for _, o := range l.OIDCProviders {
		p, err := oidcProviderOf(cfg, a.ID, o)
		if err != nil {
			return nil, err
		}
		a.oidc = append(a.oidc, p)
	}
	for name, p := range l.ManagedPolicies {
		pol, err := iampolicy.ParseKind([]byte(p.JSON), iampolicy.KindIdentity)
		if err != nil {
			return nil, fmt.Errorf("managed policy %q: %w", name, err)
		}
		a.managed[fmt.Sprintf("arn:aws:iam::%s:policy/%s", a.ID, name)] = pol
	}
	for _, u := range l.Users {
		user := &User{
			Name: u.Name, ARN: fmt.Sprintf("arn:aws:iam::%s:user/%s", a.ID, u.Name),
			ID: uniqueID("AIDA", a.ID+"/user/"+u.Name), AccessKeyID: u.AccessKeyID,
			SecretAccessKey: u.SecretAccessKey.Value, Tags: u.Tags,
		}
		for i, p := range u.Policies {
			pol, err := iampolicy.ParseKind([]byte(p.JSON), iampolicy.KindIdentity)
			if err != nil {
				return nil, fmt.Errorf("user %q policy %d: %w", u.Name, i, err)
			}
			user.Policies = append(user.Policies, pol)
		}
		a.users[user.AccessKeyID] = user
		a.byName[user.Name] = user
	}
	if c, ok := a.byName[l.Caller]; ok {
		a.Caller = c
	} else {
		akid, secret := randomKey()
		a.Caller = &User{
			Name: l.Caller, ARN: fmt.Sprintf("arn:aws:iam::%s:user/%s", a.ID, l.Caller),
			ID: uniqueID("AIDA", a.ID+"/user/"+l.Caller), AccessKeyID: akid, SecretAccessKey: secret,
		}
		a.users[akid] = a.Caller
		a.byName[l.Caller] = a.Caller
	}
	for i := range cfg.Roles {
		rc := &cfg.Roles[i]
		r := &Role{ARN: rc.ARN, Tags: rc.RoleTags}
		r.Name = rc.ARN[strings.LastIndex(rc.ARN, "/")+1:]
		r.ID = uniqueID("AROA", rc.ARN)
		var err error
		if rc.TrustPolicy != nil {
			r.Trust, err = iampolicy.ParseKind([]byte(rc.TrustPolicy.JSON), iampolicy.KindTrust)
		} else {
			// Without a trust policy, a role trusts the sidecar's own user:
			// the demo works out of the box, and nobody else is trusted.
			r.Trust, err = iampolicy.ParseKind([]byte(fmt.Sprintf(
				`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":%q},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}]}`,
				a.Caller.ARN)), iampolicy.KindTrust)
		}
		if err != nil {
			return nil, fmt.Errorf("role %q trust policy: %w", rc.Name, err)
		}
		for j, p := range rc.PermissionPolicies {
			pol, err := iampolicy.ParseKind([]byte(p.JSON), iampolicy.KindIdentity)
			if err != nil {
				return nil, fmt.Errorf("role %q permission policy %d: %w", rc.Name, j, err)
			}
			r.Permissions = append(r.Permissions, pol)
		}
		a.roles[r.ARN] = r
	}
	return a, nil
}

// UserByKey returns the user owning a long-term access key id.
func (a *Account) UserByKey(akid string) (*User, bool) {
	u, ok := a.users[akid]
	return u, ok
}

// Role returns the role with the given ARN.
func (a *Account) Role(arn string) (*Role, bool) {
	r, ok := a.roles[arn]
	return r, ok
}

// ManagedPolicy returns a local managed policy by ARN.
func (a *Account) ManagedPolicy(arn string) (*iampolicy.Policy, bool) {
	p, ok := a.managed[arn]
	return p, ok
}
