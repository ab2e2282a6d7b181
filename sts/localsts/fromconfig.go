package localsts

import (
	"fmt"
	"strings"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
)

// NewIssuerFromConfig builds the issuer of cfg's emulated account, signing
// with the key of sts.local.signing_key_file (read from cfg's snapshot,
// see config.Config.ReadFile), or with a random key when there is none:
// what it issued then stops verifying after a restart.
func NewIssuerFromConfig(cfg *config.Config, clk clock.Clock) (*Issuer, error) {
	key := RandomKey()
	if cfg.STS.Local.SigningKeyFile != "" {
		var err error
		if key, err = signingKey(cfg); err != nil {
			return nil, err
		}
	}
	acct, err := NewAccount(cfg, RandomUserKeys)
	if err != nil {
		return nil, fmt.Errorf("local sts: %w", err)
	}
	return NewIssuer(key, clk, acct)
}

// Apply puts a reloaded config in force: Prepare, then its commit.
func (i *Issuer) Apply(cfg *config.Config) error {
	commit, err := i.Prepare(cfg)
	if err != nil {
		return err
	}
	commit()
	return nil
}

// Prepare builds what a reloaded config puts in force and returns the
// function that does so: the account rebuilt from cfg (users, roles,
// policies, OIDC providers with their JWKS), and the signing key rotated
// to the one sts.local.signing_key_file holds in cfg's snapshot
// (credentials signed before keep verifying until they expire). An empty
// signing_key_file keeps the running key. Until commit is called nothing
// changes, so a reload another component refuses leaves the running
// account and key as they were; on error too.
func (i *Issuer) Prepare(cfg *config.Config) (commit func(), err error) {
	var key []byte
	if cfg.STS.Local.SigningKeyFile != "" {
		if key, err = signingKey(cfg); err != nil {
			return nil, err
		}
	}
	acct, err := NewAccount(cfg, RandomUserKeys)
	if err != nil {
		return nil, fmt.Errorf("local sts: %w", err)
	}
	return func() {
		if key != nil {
			// signingKey refused keys RotateKey would refuse.
			_ = i.RotateKey(key)
		}
		i.SetAccount(acct)
	}, nil
}

// signingKey is the signing_key_file's content, from cfg's snapshot.
func signingKey(cfg *config.Config) ([]byte, error) {
	path := cfg.STS.Local.SigningKeyFile
	b, err := cfg.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read sts.local.signing_key_file: %w", err)
	}
	if len(b) < 32 {
		return nil, fmt.Errorf("sts.local.signing_key_file %s holds %d bytes; it needs at least 32 (e.g. head -c 32 /dev/urandom > %s)", path, len(b), path)
	}
	return b, nil
}

// oidcProviderOf compiles a provider with the JWKS file's content from
// cfg's snapshot: the account is built from the bytes the config was read
// with, not from a second read of the file.
func oidcProviderOf(cfg *config.Config, accountID string, c config.OIDCProvider) (*oidcProvider, error) {
	issuer := strings.TrimRight(c.Issuer, "/")
	hostPath := strings.TrimPrefix(issuer, "https://")
	p := &oidcProvider{
		issuer:    issuer,
		hostPath:  hostPath,
		arn:       fmt.Sprintf("arn:aws:iam::%s:oidc-provider/%s", accountID, hostPath),
		audiences: c.Audiences,
	}
	data, err := cfg.ReadFile(c.JWKSFile)
	if err == nil && len(data) > maxJWKSFile {
		err = fmt.Errorf("%s is larger than %d bytes", c.JWKSFile, maxJWKSFile)
	}
	if err != nil {
		return nil, fmt.Errorf("oidc provider %s: read jwks_file: %w", c.Issuer, err)
	}
	if p.keys, err = parseJWKS(data); err != nil {
		return nil, fmt.Errorf("oidc provider %s: jwks_file %s: %w", c.Issuer, c.JWKSFile, err)
	}
	return p, nil
}
