package localsts

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// TestRotateKey: after signing_key_file changes, new credentials are signed
// with the new key and credentials issued before keep verifying until they
// expire, across several rotations; retired keys are dropped once nothing
// they signed can still be alive.
func TestRotateKey(t *testing.T) {
	k1, k2, k3 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	iss, err := NewIssuer(k1, clk, &Account{ID: "000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	mint := func() *Issued {
		out, err := iss.mint(&SessionClaims{Kind: "role", Account: "000000000000", RoleARN: "arn:aws:iam::000000000000:role/r", SessionName: "s",
			Issued: clk.Now().Unix(), Expires: clk.Now().Add(time.Hour).Unix()})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	old := mint()
	if err := iss.RotateKey(k2); err != nil {
		t.Fatal(err)
	}
	fresh := mint()
	for name, c := range map[string]*Issued{"before rotation": old, "after rotation": fresh} {
		_, secret, err := iss.Verify(c.AccessKeyID, c.SessionToken)
		if err != nil || secret != c.SecretAccessKey {
			t.Fatalf("%s: %v (secret matches: %v)", name, err, secret == c.SecretAccessKey)
		}
	}
	// A leaked, rotated-out key cannot mint anything new: a token it signs
	// "after" the rotation, or for longer than any session, is refused.
	forge := func(issued, expires time.Time) *Issued {
		c := &SessionClaims{Version: 1, AccessKeyID: "ASIAFORGEDFORGEDFORG", Kind: "role", Account: "000000000000",
			RoleARN: "arn:aws:iam::000000000000:role/r", SessionName: "s", Issued: issued.Unix(), Expires: expires.Unix()}
		body, _ := json.Marshal(c)
		return &Issued{AccessKeyID: c.AccessKeyID, SessionToken: base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(signWith(k1, "token", body))}
	}
	clk.Advance(time.Minute)
	for name, c := range map[string]*Issued{
		"issued after the rotation": forge(clk.Now(), clk.Now().Add(time.Hour)),
		"longer than any session":   forge(clk.Now().Add(-2*time.Hour), clk.Now().Add(48*time.Hour)),
	} {
		if _, _, err := iss.Verify(c.AccessKeyID, c.SessionToken); err == nil {
			t.Fatalf("forged with the old key, %s: accepted", name)
		}
	}
	if err := iss.RotateKey(k2); err != nil { // same key: no-op, k1 still known
		t.Fatal(err)
	}
	if _, _, err := iss.Verify(old.AccessKeyID, old.SessionToken); err != nil {
		t.Fatalf("re-reading the same key forgot the previous one: %v", err)
	}
	iss.RotateKey(k3)
	for name, c := range map[string]*Issued{"signed two keys ago": old, "signed one key ago": fresh} {
		if _, _, err := iss.Verify(c.AccessKeyID, c.SessionToken); err != nil {
			t.Fatalf("%s, still within its life: %v", name, err)
		}
	}
	// Once no session they signed can still live, retired keys are gone.
	clk.Advance(maxSessionLife)
	iss.RotateKey(k1)
	if n := len(iss.keys.Load().retired); n != 1 {
		t.Fatalf("%d retired keys kept, want only the one just rotated out", n)
	}
	if err := iss.RotateKey([]byte("short")); err == nil {
		t.Fatal("a short key was accepted")
	}
}
