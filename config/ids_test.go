package config

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// The identifier checks say what the regexps they replaced said, on valid
// identifiers and on every one-character change of them.
func TestIdentifierChecksMatchRegexps(t *testing.T) {
	var (
		accountRE     = regexp.MustCompile(`^\d{12}$`)
		roleARNRE     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(\d{12}):role/([\w+=,.@/-]+)$`)
		policyARNRE   = regexp.MustCompile(`^arn:aws[a-z-]*:iam::(\d{12}|aws):policy/[\w+=,.@/-]+$`)
		externalIDRE  = regexp.MustCompile(`^[\w+=,.@:/-]+$`)
		accessKeyIDRE = regexp.MustCompile(`^AKIA[A-Z0-9]{16,124}$`)
		sha256RE      = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
		labelKeyRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
	)
	seeds := []string{
		"000000000000", "123456789012",
		"arn:aws:iam::123456789012:role/app", "arn:aws-cn:iam::123456789012:role/path/to/app+x=y,z.@-_",
		"arn:aws-us-gov:iam::000000000000:role/a", "arn:aws:iam::aws:policy/ReadOnlyAccess",
		"arn:aws:iam::123456789012:policy/team/p", "arn:awsx:iam::123456789012:role/r",
		"arn:aws:iam::123456789012:role/", "arn:aws:iam::123456789012:user/u", "arn:aws:iam:::role/r",
		"arn:aws:sts::123456789012:assumed-role/r/s", "arn:aws:iam::12345678901:role/r",
		"ext-id_1+=,.@:/", "a", "AKIAIOSFODNN7EXAMPLE", "AKIA" + strings.Repeat("Z", 124), "AKIA" + strings.Repeat("Z", 125),
		"ASIAIOSFODNN7EXAMPLE", strings.Repeat("ab", 32), strings.Repeat("AB", 32), strings.Repeat("0", 63),
		"com.example.app", "Com/ex-a_mple", "_x", ".x", "x\n", "",
	}
	edits := []string{"", "a", "Z", "0", ":", "/", "-", "_", "*", " ", "\n", "é", "\xff", "::", "aws", "role/"}
	rng := rand.New(rand.NewPCG(3, 4))
	var in []string
	for _, s := range seeds {
		in = append(in, s)
		for i := 0; i <= len(s); i++ {
			// one character replaced, inserted or deleted at each place
			e := edits[rng.IntN(len(edits))]
			in = append(in, s[:i]+e+s[i:])
			if i < len(s) {
				in = append(in, s[:i]+e+s[i+1:], s[:i]+s[i+1:])
			}
		}
	}
	for _, s := range in {
		if got, want := validAccount(s), accountRE.MatchString(s); got != want {
			t.Errorf("validAccount(%q) = %v, regexp %v", s, got, want)
		}
		acct, name, ok := parseIAMARN(s, "role", false)
		m := roleARNRE.FindStringSubmatch(s)
		if ok != (m != nil) || (ok && (acct != m[1] || name != m[2])) {
			t.Errorf("parseIAMARN(%q, role) = %q %q %v, regexp %q", s, acct, name, ok, m)
		}
		if _, _, ok := parseIAMARN(s, "policy", true); ok != policyARNRE.MatchString(s) {
			t.Errorf("parseIAMARN(%q, policy) = %v, regexp %v", s, ok, !ok)
		}
		if got, want := s != "" && stsrules.ExternalIDChars.All(s), externalIDRE.MatchString(s); got != want {
			t.Errorf("externalIDChars(%q) = %v, regexp %v", s, got, want)
		}
		if got, want := validAccessKeyID(s), accessKeyIDRE.MatchString(s); got != want {
			t.Errorf("validAccessKeyID(%q) = %v, regexp %v", s, got, want)
		}
		if got, want := len(s) == 64 && hexChars.All(s), sha256RE.MatchString(s); got != want {
			t.Errorf("hexChars(%q) = %v, regexp %v", s, got, want)
		}
		if got, want := validLabelKey(s), labelKeyRE.MatchString(s); got != want {
			t.Errorf("validLabelKey(%q) = %v, regexp %v", s, got, want)
		}
	}
}
