package stsrules

import "unicode/utf8"

// SanitizeTagValue makes a rendered session tag value acceptable to STS:
// characters outside its set become '_' and the value is cut to
// MaxTagValueLen characters. (Tag values are data, not identities: two
// callers whose values sanitise alike still have distinct session names.)
func SanitizeTagValue(v string) string {
	if ValidTagValue(v) {
		return v
	}
	v = tagValueChars.Replace(v, '_')
	if utf8.RuneCountInString(v) > MaxTagValueLen {
		r := []rune(v)
		v = string(r[:MaxTagValueLen])
	}
	return v
}
