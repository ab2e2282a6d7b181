package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/credsidecar/credsidecar/internal/clock"
)

// inside reports whether s's bytes lie within body's memory.
func inside(s string, body []byte) bool {
	if len(s) == 0 || len(body) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(&body[0]))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(body))
}

// shares fails unless c's key, secret and token point into body.
func shares(t *testing.T, what string, c *Credentials, body []byte) {
	t.Helper()
	for _, s := range []string{c.AccessKeyID, c.SecretAccessKey, c.SessionToken} {
		if !inside(s, body) {
			t.Fatalf("%s: %q does not share the body's memory", what, s)
		}
	}
}

func testBody(c *Credentials) []byte {
	return []byte(`{"k":"` + c.AccessKeyID + `","s":"` + c.SecretAccessKey + `","t":"` + c.SessionToken + `"}`)
}

// Once a front end has rendered a session of a role, the agent renders
// the role's new sessions, and every session's renewals, into the slot
// their callers use before publishing them, and their key, secret and
// token are substrings of that body: kept once, not twice. The first
// session is rendered when asked (nothing was known), and shares from its
// renewal on.
func TestRenderedBodySharesStrings(t *testing.T) {
	f := newFixture(t, 100)
	calls := 0
	render := func(c *Credentials) []byte { calls++; return testBody(c) }
	first := mustCreds(t, f.a, alice, "app")
	body := first.Rendered(2, render)
	if calls != 1 || string(body) != string(testBody(first)) {
		t.Fatalf("first render: %d calls, body %s", calls, body)
	}
	// A new session of the same role: rendered before it was handed out.
	bob := mustCreds(t, f.a, tokenCaller("bob-token"), "app")
	if calls != 2 {
		t.Fatalf("a new session of a rendered role was not pre-rendered (%d renders)", calls)
	}
	b := bob.Rendered(2, func(*Credentials) []byte { t.Fatal("rendered again"); return nil })
	if string(b) != string(testBody(bob)) {
		t.Fatalf("pre-rendered body %s, want %s", b, testBody(bob))
	}
	shares(t, "new session", bob, b)
	// Another role: nothing known, nothing pre-rendered.
	short := mustCreds(t, f.a, alice, "short")
	if calls != 2 || short.render[2].Load() != nil {
		t.Fatal("a role nobody rendered was pre-rendered")
	}
	// Renewal of the first session (used, so renewed at its refresh
	// point): into the slot its callers used, sharing.
	mustCreds(t, f.a, alice, "app")
	f.clk.Advance(40 * time.Minute)
	renewed := mustCreds(t, f.a, alice, "app")
	if renewed == first || renewed.AccessKeyID == first.AccessKeyID {
		t.Fatal("not renewed")
	}
	rb := renewed.Rendered(2, func(*Credentials) []byte { t.Fatal("renewal rendered again"); return nil })
	if string(rb) != string(testBody(renewed)) {
		t.Fatalf("renewal body %s, want %s", rb, testBody(renewed))
	}
	shares(t, "renewal", renewed, rb)
	// A second format renders as before, from the shared strings.
	if other := renewed.Rendered(1, func(c *Credentials) []byte { return []byte("other " + c.SessionToken) }); string(other) != "other "+renewed.SessionToken {
		t.Fatalf("second format: %s", other)
	}
}

// sameSource hands every caller the same value, as a careless fake might.
type sameSource struct{ c *Credentials }

func (s sameSource) Retrieve(context.Context, Request) (*Credentials, error) { return s.c, nil }

// A value the source hands out twice is never changed once published:
// only its first install may pre-render it.
func TestPrerenderOnlyFreshValues(t *testing.T) {
	clk := clock.NewFake(t0)
	same := &Credentials{AccessKeyID: "ASIASAME", SecretAccessKey: "s", SessionToken: "t", Issued: t0, Expiration: t0.Add(time.Hour)}
	key := same.AccessKeyID
	a, err := New(Options{Source: sameSource{same}, Clock: clk, DisableWarm: true}, parseConfig(t, fmt.Sprintf(testYAML, 100)))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	mustCreds(t, a, alice, "app").Rendered(0, testBody) // the role's slot is known now
	got := mustCreds(t, a, tokenCaller("bob-token"), "app")
	if got != same || unsafe.StringData(got.AccessKeyID) != unsafe.StringData(key) {
		t.Fatal("a published value was rendered into again")
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
	if s := within(nil, "x"); s != "x" {
		t.Fatalf("within nil body = %q", s)
	}
}
