package charclass

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// oracles pairs each class the daemon uses with the regexp it replaced.
var oracles = []struct {
	name  string
	class Class
	re    string // a single-character class
}{
	{"session name", ASCII(true, "+=,.@-"), `[\w+=,.@-]`},
	{"external id", ASCII(true, "+=,.@:/-"), `[\w+=,.@:/-]`},
	{"serial number", ASCII(true, "+=/:,.@-"), `[\w+=/:,.@-]`},
	{"label key", ASCII(false, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-"), `[A-Za-z0-9._/-]`},
	{"digit", Digit, `\d`},
	{"hex", HexDigit, `[0-9a-fA-F]`},
	{"tag key", LetterSpaceNumber("_.:/=+-@"), `[\p{L}\p{Z}\p{N}_.:/=+\-@]`},
	{"tag value", LetterSpaceNumber("_.:/=+-@*"), `[\p{L}\p{Z}\p{N}_.:/=+\-@*]`},
}

// corpus is strings at the classes' edges: every ASCII character, Unicode
// letters, numbers and separators of several scripts, symbols, U+FFFD
// written out, and bytes that are not UTF-8.
func corpus() []string {
	out := []string{"", "a", "abc", "a b", "ab_c-d", "12345", "x\n", "\n", "é", "日本語", "٣", "Ⅻ", "\u00a0", "\u2028", "\u3000",
		"€", "😀", "\ufffd", "\xff", "a\xffb", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ﬁ", "ǅ", "ʰ", "\u0300", "x\u0300"}
	for r := range rune(utf8.RuneSelf) {
		out = append(out, string(r), "a"+string(r)+"b")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("aZ09_+=,.@-:/*? \t\n\x00\x7fé日٣\u00a0\u2028€😀\ufffd\u0300")
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(8) {
			if rng.IntN(10) == 0 {
				b.WriteByte(byte(0x80 + rng.IntN(0x80))) // not UTF-8
				continue
			}
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		out = append(out, b.String())
	}
	return out
}

func TestClassesMatchTheirRegexps(t *testing.T) {
	in := corpus()
	for _, o := range oracles {
		all := regexp.MustCompile(`^` + o.re + `*$`)
		not := regexp.MustCompile(`[^` + strings.TrimSuffix(strings.TrimPrefix(o.re, "["), "]") + `]`)
		for _, s := range in {
			if got, want := o.class.All(s), all.MatchString(s); got != want {
				t.Errorf("%s: All(%q) = %v, the regexp says %v", o.name, s, got, want)
			}
			if got, want := o.class.Replace(s, '_'), not.ReplaceAllString(s, "_"); got != want {
				t.Errorf("%s: Replace(%q) = %q, the regexp gives %q", o.name, s, got, want)
			}
		}
	}
}

// Every rune, not only the corpus's: the Unicode classes are the regexp's.
func TestUnicodeClassesEveryRune(t *testing.T) {
	if testing.Short() {
		t.Skip("walks all of Unicode")
	}
	for _, o := range oracles {
		re := regexp.MustCompile(`^` + o.re + `$`)
		for r := rune(0); r <= utf8.MaxRune; r++ {
			if !utf8.ValidRune(r) {
				continue
			}
			s := string(r)
			if got, want := o.class.All(s), re.MatchString(s); got != want {
				t.Fatalf("%s: %U: class says %v, regexp %v", o.name, r, got, want)
			}
		}
	}
}

func TestASCIIRefusesNonASCII(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("ASCII took a non-ASCII extra character")
		}
	}()
	ASCII(true, "é")
}

func FuzzClassesMatchTheirRegexps(f *testing.F) {
	for _, s := range corpus()[:200] {
		f.Add(s)
	}
	type pair struct {
		class    Class
		all, not *regexp.Regexp
	}
	var pairs []pair
	for _, o := range oracles {
		body := strings.TrimSuffix(strings.TrimPrefix(o.re, "["), "]")
		pairs = append(pairs, pair{o.class, regexp.MustCompile(`^` + o.re + `*$`), regexp.MustCompile(`[^` + body + `]`)})
	}
	f.Fuzz(func(t *testing.T, s string) {
		for i, p := range pairs {
			if got, want := p.class.All(s), p.all.MatchString(s); got != want {
				t.Fatalf("%s: All(%q) = %v, regexp %v", oracles[i].name, s, got, want)
			}
			if got, want := p.class.Replace(s, '-'), p.not.ReplaceAllString(s, "-"); got != want {
				t.Fatalf("%s: Replace(%q) = %q, regexp %q", oracles[i].name, s, got, want)
			}
		}
	})
}
