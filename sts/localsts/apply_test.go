package localsts

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
)

// applyRig is a config on disk naming a signing key file and a JWKS file.
type applyRig struct {
	t                   *testing.T
	path, keyFile, jwks string
}

func newApplyRig(t *testing.T) *applyRig {
	dir := t.TempDir()
	r := &applyRig{t: t, path: filepath.Join(dir, "config.yaml"), keyFile: filepath.Join(dir, "key"), jwks: filepath.Join(dir, "jwks.json")}
	writeJWKS(t, r.jwks, jwkRSA("k1", &testRSAKey().PublicKey))
	r.writeKey(bytes.Repeat([]byte{1}, 32))
	r.writeConfig("app")
	return r
}

func (r *applyRig) writeKey(k []byte) {
	if err := os.WriteFile(r.keyFile, k, 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func (r *applyRig) writeConfig(roles ...string) {
	var b strings.Builder
	fmt.Fprintf(&b, "sts: {mode: local, local: {signing_key_file: %s, oidc_providers: [{issuer: %s, audiences: [sts.amazonaws.com], jwks_file: %s}]}}\nroles:\n", r.keyFile, testIssuer, r.jwks)
	for _, name := range roles {
		fmt.Fprintf(&b, "  - {name: %s}\n", name)
	}
	if err := os.WriteFile(r.path, []byte(b.String()), 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func (r *applyRig) load() *config.Config {
	r.t.Helper()
	cfg, err := config.Load(r.path)
	if err != nil {
		r.t.Fatal(err)
	}
	return cfg
}

func signingKeyOf(i *Issuer) []byte { return i.keys.Load().current }

// TestIssuerApply: a reloaded config rebuilds the account and rotates the
// signing key to the bytes of the config's own snapshot (a later write to
// the file is the next reload's business); a bad key or JWKS changes
// nothing; credentials issued before a rotation keep verifying.
func TestIssuerApply(t *testing.T) {
	r := newApplyRig(t)
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg1 := r.load()
	iss, err := NewIssuerFromConfig(cfg1, clk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signingKeyOf(iss), bytes.Repeat([]byte{1}, 32)) {
		t.Fatal("not signing with the signing_key_file's key")
	}
	before, err := iss.mint(&SessionClaims{Kind: "role", Account: "000000000000", RoleARN: "arn:aws:iam::000000000000:role/app", SessionName: "s",
		Issued: clk.Now().Unix(), Expires: clk.Now().Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}

	// The file changes after cfg1 was read: applying cfg1 again keeps the
	// key cfg1 was read with.
	r.writeKey(bytes.Repeat([]byte{2}, 32))
	if err := iss.Apply(cfg1); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signingKeyOf(iss), bytes.Repeat([]byte{1}, 32)) {
		t.Fatal("Apply read the key file again instead of using the config's snapshot")
	}

	// The reload that reads the change rotates, and rebuilds the account.
	r.writeConfig("app", "other")
	cfg2 := r.load()
	if err := iss.Apply(cfg2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signingKeyOf(iss), bytes.Repeat([]byte{2}, 32)) {
		t.Fatal("signing key not rotated")
	}
	if _, ok := iss.Account().Role("arn:aws:iam::000000000000:role/other"); !ok {
		t.Fatal("account not rebuilt: no role other")
	}
	if _, _, err := iss.Verify(before.AccessKeyID, before.SessionToken); err != nil {
		t.Fatalf("credentials issued before the rotation: %v", err)
	}

	// A short key or a broken JWKS fails, and nothing changes.
	acct := iss.Account()
	r.writeKey([]byte("short"))
	r.writeConfig("app")
	if err := iss.Apply(r.load()); err == nil || !strings.Contains(err.Error(), "holds 5 bytes") {
		t.Fatalf("short key: %v", err)
	}
	r.writeKey(bytes.Repeat([]byte{3}, 32))
	os.WriteFile(r.jwks, []byte(`{"keys":[]}`), 0o600)
	if err := iss.Apply(r.load()); err == nil || !strings.Contains(err.Error(), "jwks_file") {
		t.Fatalf("empty JWKS: %v", err)
	}
	if iss.Account() != acct || !bytes.Equal(signingKeyOf(iss), bytes.Repeat([]byte{2}, 32)) {
		t.Fatal("a failed Apply changed the account or the key")
	}
}

// TestNewIssuerFromConfigRandomKey: without signing_key_file the key is
// random, and Apply keeps it.
func TestNewIssuerFromConfigRandomKey(t *testing.T) {
	cfg := parseTestConfig(t, "sts: {mode: local}\nroles: [{name: app}]\n")
	iss, err := NewIssuerFromConfig(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := signingKeyOf(iss)
	if len(key) != 32 {
		t.Fatalf("random key of %d bytes", len(key))
	}
	if err := iss.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(signingKeyOf(iss), key) {
		t.Fatal("Apply without signing_key_file changed the key")
	}
}
