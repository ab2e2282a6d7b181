package agent

import (
	"strings"
	"testing"
	"time"
	"unsafe"
)

// inside reports whether s's bytes lie within body's memory.
func inside(s string, body []byte) bool {
	if len(s) == 0 || len(body) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(&body[0]))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(body))
}

// The first body rendered from cached credentials becomes their strings'
// storage: the cache serves a copy whose key, secret and token point into
// the body, with the same values and the body memoized, and the
// retirement of an unused session still finds it (sameIssue).
func TestRenderedBodySharesStrings(t *testing.T) {
	f := newFixture(t, 100)
	first := mustCreds(t, f.a, alice, "app")
	render := func(c *Credentials) []byte {
		return []byte(`{"k":"` + c.AccessKeyID + `","s":"` + c.SecretAccessKey + `","t":"` + c.SessionToken + `"}`)
	}
	body := first.Rendered(0, render)
	c := mustCreds(t, f.a, alice, "app")
	if c == first {
		t.Fatal("the cache still holds the credentials the body was rendered from")
	}
	for _, s := range []struct{ got, want string }{
		{c.AccessKeyID, first.AccessKeyID}, {c.SecretAccessKey, first.SecretAccessKey}, {c.SessionToken, first.SessionToken},
	} {
		if s.got != s.want {
			t.Fatalf("shared copy has %q, want %q", s.got, s.want)
		}
		if !inside(s.got, body) {
			t.Fatalf("%q does not share the body's memory", s.got)
		}
	}
	if !c.Expiration.Equal(first.Expiration) || c.RoleARN != first.RoleARN || !c.Issued.Equal(first.Issued) {
		t.Fatalf("shared copy differs: %+v vs %+v", c, first)
	}
	called := false
	if b := c.Rendered(0, func(*Credentials) []byte { called = true; return nil }); called || string(b) != string(body) {
		t.Fatal("the shared copy renders its body again")
	}
	// A second format renders from the copy and swaps nothing.
	other := c.Rendered(1, func(c *Credentials) []byte { return []byte("other " + c.SessionToken) })
	if again := mustCreds(t, f.a, alice, "app"); again != c || string(again.Rendered(1, nil)) != string(other) {
		t.Fatal("a second format replaced the cached credentials")
	}
	// Unused: retired at its refresh point and removed at expiry, as
	// without the copy.
	f.clk.Advance(2 * time.Hour)
	if n := f.a.Len(); n != 0 {
		t.Fatalf("an expired unused session is still cached (%d)", n)
	}
}

// A body that does not hold a string verbatim (escaped, say) keeps the
// credentials' own string.
func TestWithinFallsBack(t *testing.T) {
	body := []byte(`{"t":"a\u002bb"}`)
	if s := within(body, "a+b"); s != "a+b" || inside(s, body) {
		t.Fatalf("within = %q", s)
	}
	if s := within(body, "a\\u002bb"); !inside(s, body) || !strings.Contains(string(body), s) {
		t.Fatalf("within = %q", s)
	}
	if s := within(body, ""); s != "" {
		t.Fatalf("within empty = %q", s)
	}
}
