package localsts

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// New tokens carry no nonce (the access key id's random bytes make the
// claims unique); a token minted with one, as before, still verifies, with
// the secret it was issued with.
func TestTokenWithoutNonce(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	iss, err := NewIssuer(key, clk, &Account{ID: "000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	claims := func() *SessionClaims {
		return &SessionClaims{Kind: "role", Account: "000000000000", RoleARN: "arn:aws:iam::000000000000:role/r", SessionName: "s",
			Issued: clk.Now().Unix(), Expires: clk.Now().Add(time.Hour).Unix()}
	}
	a, err := iss.mint(claims())
	if err != nil {
		t.Fatal(err)
	}
	b, err := iss.mint(claims())
	if err != nil {
		t.Fatal(err)
	}
	if a.SessionToken == b.SessionToken || a.SecretAccessKey == b.SecretAccessKey {
		t.Fatal("two sessions with the same claims got the same token or secret")
	}
	body, err := base64.RawURLEncoding.DecodeString(strings.SplitN(a.SessionToken, ".", 2)[0])
	if err != nil || !bytes.Contains(body, []byte(a.AccessKeyID)) {
		t.Fatalf("a new token's claims did not decode (%v): %q", err, body)
	}
	if bytes.Contains(body, []byte(`"n":`)) {
		t.Fatalf("a new token still carries a nonce: %s", body)
	}
	// Minted the way earlier versions did: the key id's bytes again as a nonce.
	old := claims()
	old.Version, old.AccessKeyID, old.Nonce = 1, "ASIAAAAAAAAAAAAAAAAA", "AAAAAAAAAAAAAA"
	oldBody, err := json.Marshal(old)
	if err != nil {
		t.Fatal(err)
	}
	tok := base64.RawURLEncoding.EncodeToString(oldBody) + "." + base64.RawURLEncoding.EncodeToString(signWith(key, "token", oldBody))
	got, secret, err := iss.Verify(old.AccessKeyID, tok)
	if err != nil {
		t.Fatal(err)
	}
	if secret != secretWith(key, oldBody) || got.SessionName != "s" || got.Nonce != old.Nonce {
		t.Fatalf("an earlier token verified as %+v", got)
	}
}
