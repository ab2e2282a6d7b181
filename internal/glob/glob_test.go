package glob

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		p, s string
		want bool
	}{
		{"billing.service", "billing.service", true},
		{"billing.service", "billing.services", false},
		{"*.service", "billing.service", true},
		{"*.service", "billing.scope", false},
		{"/system.slice/*", "/system.slice/a.service/x", true},
		{"/system.slice/*", "/user.slice/a", false},
		{"a?c", "abc", true},
		{"a?c", "aéc", true},
		{"a?c", "ac", false},
		{"*", "", true},
		{"", "", true},
		{"", "x", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"[a]", "a", false}, // brackets are literal
		{"[a]", "[a]", true},
	} {
		if got := Match(tc.p, tc.s); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.p, tc.s, got, tc.want)
		}
	}
}

func TestMatchLinear(t *testing.T) {
	p := strings.Repeat("*a", 50) + "b"
	s := strings.Repeat("a", 20000)
	if Match(p, s) {
		t.Fatal("matched")
	}
}

func FuzzMatch(f *testing.F) {
	f.Add("*.service", "billing.service")
	f.Fuzz(func(t *testing.T, p, s string) {
		if Match(strings.ReplaceAll(p, "*", ""), s) && !strings.Contains(p, "?") && strings.ReplaceAll(p, "*", "") != s {
			t.Fatalf("literal %q matched %q", p, s)
		}
	})
}
