package stsrules

import (
	"strings"
	"testing"
)

func TestSessionNames(t *testing.T) {
	for s, want := range map[string]bool{
		"ab": true, "a": false, strings.Repeat("x", 64): true, strings.Repeat("x", 65): false,
		"user@example.com": true, "a b": false, "a/b": false, "": false, "é-name": false,
	} {
		if got := ValidSessionName(s); got != want {
			t.Errorf("ValidSessionName(%q) = %v, want %v", s, got, want)
		}
	}
	for in, want := range map[string]string{
		"ok-name": "ok-name", "a b/c": "a-b-c", "x": "credsidecar-x", "": "credsidecar-",
		strings.Repeat("y", 70): strings.Repeat("y", 64),
	} {
		if got := SanitizeSessionName(in); got != want || !ValidSessionName(got) {
			t.Errorf("SanitizeSessionName(%q) = %q, want %q (valid)", in, got, want)
		}
	}
	if !ReservedSourceIdentity("AWS:me") || ReservedSourceIdentity("me") {
		t.Error("the aws: prefix is reserved, case-insensitively")
	}
}

// TestTagLengthsInCharacters: STS counts characters, not bytes (config
// counted runes and the embedded STS bytes: a 100-letter Greek key passed
// one and failed the other).
func TestTagLengthsInCharacters(t *testing.T) {
	greek := strings.Repeat("λ", MaxTagKeyLen)
	for k, want := range map[string]bool{
		"team": true, "": false, greek: true, greek + "λ": false, "a b:c/d=e+f-g@h_i.j": true, "bad!": false,
	} {
		if got := ValidTagKey(k); got != want {
			t.Errorf("ValidTagKey(%q) = %v, want %v", k, got, want)
		}
	}
	for v, want := range map[string]bool{
		"": true, "blue*": true, strings.Repeat("λ", MaxTagValueLen): true, strings.Repeat("v", MaxTagValueLen+1): false, "bad!": false,
	} {
		if got := ValidTagValue(v); got != want {
			t.Errorf("ValidTagValue(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestKeyIDSuffix: one helper, which never returns a whole short id (the
// embedded STS's copy returned it).
func TestKeyIDSuffix(t *testing.T) {
	for in, want := range map[string]string{"ASIAABCDEFGHIJKL1234": "1234", "AKIA": "", "ASIA123": "", "": ""} {
		if got := KeyIDSuffix(in); got != want {
			t.Errorf("KeyIDSuffix(%q) = %q, want %q", in, got, want)
		}
	}
}
