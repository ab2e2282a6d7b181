// Package glob is the wildcard language of match values (PRODUCT.md): "*"
// matches any run of characters, "?" exactly one, against the whole value;
// nothing else is special.
package glob

import "unicode/utf8"

// Match reports whether pattern matches all of s. It backtracks only to the
// most recent "*", so it runs in O(len(pattern)·len(s)) time whatever the
// input: a hostile value cannot make it blow up.
func Match(pattern, s string) bool {
	p, v := 0, 0
	starP, starV := -1, 0
	for v < len(s) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				starP, starV = p, v
				p++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(s[v:])
				p++
				v += n
				continue
			default:
				if pattern[p] == s[v] {
					p++
					v++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Let the last star absorb one more character.
		_, n := utf8.DecodeRuneInString(s[starV:])
		starV += n
		p, v = starP+1, starV
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// Valid reports why pattern cannot be a glob ("" when it can): it must be
// valid UTF-8 and hold no control characters.
func Valid(pattern string) string {
	if pattern == "" {
		return "it is empty"
	}
	if !utf8.ValidString(pattern) {
		return "it is not valid UTF-8"
	}
	for _, r := range pattern {
		if r < 0x20 || r == 0x7f {
			return "it holds a control character"
		}
	}
	return ""
}
