package iampolicy

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything:at/all", true},
		{"?", "", false},
		{"?", "é", true}, // one character, not one byte
		{"??", "é", false},
		{"abc", "abc", true},
		{"abc", "abd", false},
		{"a*c", "abbbc", true},
		{"a*c", "abbbd", false},
		{"*c", "abc", true},
		{"a*", "a", true},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "aXcYb", false},
		{"*a*a*a*b", "aaaaaaaab", true},
		{"a?c*", "abcdef", true},
		{"**", "x", true},
		{"*?", "", false},
		{"sts:assume*", "sts:assumerole", true},
	}
	for _, tt := range tests {
		if got := compileGlob(tt.pattern).match(tt.s); got != tt.want {
			t.Errorf("glob %q match %q = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// TestGlobNoBlowup runs a pattern that takes exponential time with a
// recursive matcher; with the last-star matcher it is quadratic at worst.
func TestGlobNoBlowup(t *testing.T) {
	pattern := compileGlob(strings.Repeat("a*", 200) + "b")
	s := strings.Repeat("a", 20000)
	if pattern.match(s) {
		t.Fatal("matched a string without b")
	}
}

func TestMatchARN(t *testing.T) {
	tests := []struct {
		pattern, arn string
		want         bool
	}{
		{"*", "arn:aws:iam::1:role/x", true},
		{"*", "", true},
		{"arn:aws:iam::*:role/*", "arn:aws:iam::1:role/a/b", true},
		{"arn:aws:iam::*:role/*", "arn:aws:iam::1:user/a", false},
		{"arn:*:iam::1:role/x", "arn:aws-cn:iam::1:role/x", true},
		{"arn:aws:iam::*:role/x", "arn:aws:iam::1:2:role/x", false},
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b/k:with:colons", true},
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b", false},
		{"arn:aws:iam::1:role/x", "not-an-arn", false},
	}
	for _, tt := range tests {
		if got := matchARN(compileGlob(tt.pattern), tt.arn); got != tt.want {
			t.Errorf("matchARN(%q, %q) = %v, want %v", tt.pattern, tt.arn, got, tt.want)
		}
	}
}

func TestTemplate(t *testing.T) {
	ctx := evalContext{"aws:username": {"bob"}, "aws:principaltag/team": {"a*b"}}
	tests := []struct {
		in       string
		vars     bool
		wantGlob string // rendered, wildcards as * and ?
		wantStr  string
		wantOK   bool
		literal  string // a string the glob must match literally, if set
	}{
		{"plain", true, "plain", "plain", true, ""},
		{"home/${aws:username}/*", true, "home/bob/*", "home/bob/*", true, ""},
		{"${aws:PrincipalTag/team}", true, "a*b", "a*b", true, "a*b"},
		{"${missing}", true, "", "", false, ""},
		{"${missing, 'dflt'}", true, "dflt", "dflt", true, ""},
		{"${missing,'x'}y", true, "xy", "xy", true, ""},
		{"${missing, unquoted}", true, "${missing, unquoted}", "${missing, unquoted}", true, ""},
		{"a${*}b${?}c${$}", true, "a*b?c$", "a*b?c$", true, "a*b?c$"},
		{"${aws:username}", false, "${aws:username}", "${aws:username}", true, ""},
		{"open ${aws:username", true, "open ${aws:username", "open ${aws:username", true, ""},
	}
	for _, tt := range tests {
		tmpl := compileTemplate(tt.in, tt.vars)
		g, ok := tmpl.resolveGlob(ctx)
		s, ok2 := tmpl.resolveString(ctx)
		if ok != tt.wantOK || ok2 != tt.wantOK {
			t.Errorf("%q: ok = %v/%v, want %v", tt.in, ok, ok2, tt.wantOK)
			continue
		}
		if !ok {
			continue
		}
		if g.String() != tt.wantGlob || s != tt.wantStr {
			t.Errorf("%q: glob %q string %q, want %q and %q", tt.in, g, s, tt.wantGlob, tt.wantStr)
		}
		if tt.literal != "" {
			if !g.match(tt.literal) {
				t.Errorf("%q: does not match %q", tt.in, tt.literal)
			}
			if g.match(tt.literal+"x") || g.match(strings.ReplaceAll(tt.literal, "*", "zz")) {
				t.Errorf("%q: substituted or escaped characters act as wildcards", tt.in)
			}
		}
	}
}
