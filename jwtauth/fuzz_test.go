package jwtauth

import (
	"strings"
	"testing"
	"time"
)

// FuzzVerify: no input makes the token path panic, and whatever it accepts
// satisfies the policy (a subject, an expiry after now, the audience).
func FuzzVerify(f *testing.F) {
	k := rsaKey(f, "r1")
	e := ecKey(f, "e1")
	set := keySet(f, k, e)
	valid := sign(f, k, claims(), nil)
	f.Add(valid)
	f.Add(sign(f, e, claims(), nil))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add(strings.Repeat(".", 10))
	f.Add(valid[:len(valid)-3] + "AAA")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := VerifyToken(tok, set, testPolicy(), testNow)
		if err != nil {
			if ReasonOf(err) == 0 {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if c.Subject == "" || !c.Expiry.After(testNow.Add(-DefaultLeeway)) || c.Audience != "credsidecar" || c.Issuer != testIssuer {
			t.Fatalf("accepted %+v", c)
		}
		if c.Expiry.Sub(testNow) > 25*time.Hour {
			t.Fatalf("lifetime bound not applied: %v", c.Expiry)
		}
	})
}
