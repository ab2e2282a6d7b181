// Package charclass checks strings against the character classes of the
// AWS and Docker name patterns the config and the local STS enforce
// (`[\w+=,.@-]`, `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, `\d{12}`, …) without
// regular expressions. A compiled regexp of a Unicode class such as
// \p{L} keeps tens of KiB of instructions and rune tables live for the
// life of the process, and the garbage collector marks them on every
// cycle: the daemon's ~15 patterns, compiled at package init, were 140
// KiB of a 1.3 MiB live heap. These classes are plain sets, so a loop
// over the runes says the same (the tests hold each class to the regexp
// it replaces, invalid UTF-8 included).
package charclass

import (
	"unicode"
	"unicode/utf8"
)

// Class is a set of runes.
type Class func(r rune) bool

// Word is RE2's \w: ASCII letters, digits and '_' (RE2's \w is ASCII
// only).
func Word(r rune) bool {
	return r < utf8.RuneSelf && asciiWord[r]
}

// Digit is RE2's \d: the ASCII digits.
func Digit(r rune) bool { return '0' <= r && r <= '9' }

// HexDigit is [0-9a-fA-F].
func HexDigit(r rune) bool {
	return Digit(r) || ('a' <= r && r <= 'f') || ('A' <= r && r <= 'F')
}

var asciiWord = func() (t [utf8.RuneSelf]bool) {
	for r := range utf8.RuneSelf {
		t[r] = r == '_' || ('0' <= r && r <= '9') || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z')
	}
	return t
}()

// ASCII returns the class of \w (when word is true) plus the ASCII
// characters of extra, as in the pattern [\w<extra>]. It panics if extra
// holds a character outside ASCII (a programming error).
func ASCII(word bool, extra string) Class {
	var t [utf8.RuneSelf]bool
	if word {
		t = asciiWord
	}
	for i := range len(extra) {
		if extra[i] >= utf8.RuneSelf {
			panic("charclass: non-ASCII character in " + extra)
		}
		t[extra[i]] = true
	}
	return func(r rune) bool { return r < utf8.RuneSelf && t[r] }
}

// LetterSpaceNumber returns the class [\p{L}\p{Z}\p{N}<extra>]: Unicode
// letters, separators and numbers, plus the ASCII characters of extra.
func LetterSpaceNumber(extra string) Class {
	ascii := ASCII(false, extra)
	return func(r rune) bool {
		return ascii(r) || unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Z, r)
	}
}

// All reports whether every character of s is in c (true for ""). A byte
// that is not valid UTF-8 is in no class, as in RE2, which reads it as
// U+FFFD, a symbol that none of these classes holds.
func (c Class) All(s string) bool {
	for _, r := range s {
		if !c(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// Replace returns s with every character outside c replaced by repl, one
// repl per invalid byte, as RE2's ReplaceAllString of [^class] does.
func (c Class) Replace(s string, repl rune) string {
	if c.All(s) {
		return s
	}
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if !c(r) || r == utf8.RuneError {
			r = repl
		}
		out = append(out, r)
	}
	return string(out)
}
