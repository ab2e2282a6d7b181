package localsts

import (
	"regexp"
	"testing"

	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// The parameter checks say what the regexps they replaced said: every
// rune up to U+0200 alone and between others, U+FFFD and bytes that are
// not UTF-8.
func TestParameterCharsMatchRegexps(t *testing.T) {
	classes := []struct {
		name  string
		check func(string) bool
		re    *regexp.Regexp
	}{
		{"policy", func(s string) bool { return s != "" && policyChars.All(s) }, regexp.MustCompile(`^[\x{0009}\x{000A}\x{000D}\x{0020}-\x{00FF}]+$`)},
		{"external id", stsrules.ExternalIDChars.All, regexp.MustCompile(`^[\w+=,.@:/-]*$`)},
		{"serial number", serialNumberChars.All, regexp.MustCompile(`^[\w+=/:,.@-]*$`)},
		{"token code", func(s string) bool { return len(s) == 6 && tokenCodeChars.All(s) }, regexp.MustCompile(`^[\d]{6}$`)},
	}
	in := []string{"", "123456", "12345", "1234567", "12345a", "١٢٣٤٥٦", "\ufffd", "\xff", "a\xffb", "{\"Version\":\"2012-10-17\"}\n\t\r"}
	for r := rune(0); r <= 0x200; r++ {
		in = append(in, string(r), "ab"+string(r)+"cd", "12"+string(r)+"456")
	}
	for _, c := range classes {
		for _, s := range in {
			if got, want := c.check(s), c.re.MatchString(s); got != want {
				t.Errorf("%s: %q: check %v, regexp %v", c.name, s, got, want)
			}
		}
	}
}
