package stsrules

import (
	"crypto/sha256"
	"encoding/hex"
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
	hash := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:4]) }
	for in, want := range map[string]string{
		"ok-name":               "ok-name",
		"ok+=,.@-_":             "ok+=,.@-_",
		strings.Repeat("a", 64): strings.Repeat("a", 64),
		"a b/c":                 "a-b-c-" + hash("a b/c"),
		"x":                     "x-" + hash("x"),
		"":                      "credsidecar-" + hash(""),
		strings.Repeat("é", 40): strings.Repeat("-", 40) + "-" + hash(strings.Repeat("é", 40)),
		strings.Repeat("y", 70): strings.Repeat("y", 55) + "-" + hash(strings.Repeat("y", 70)),
	} {
		if got := SanitizeSessionName(in); got != want || !ValidSessionName(got) {
			t.Errorf("SanitizeSessionName(%q) = %q, want %q (valid)", in, got, want)
		}
	}
	// Names that sanitising or cutting used to map to one stay distinct.
	long := "payments-reconciliation-service-production-eu-west-1-cluster-a-"
	for _, pair := range [][2]string{
		{"system:serviceaccount:a-b:c", "system:serviceaccount:a:b-c"},
		{long + "blue", long + "green"},
		{"a", "a-"},
	} {
		if x, y := SanitizeSessionName(pair[0]), SanitizeSessionName(pair[1]); x == y {
			t.Errorf("%q and %q share the session name %q", pair[0], pair[1], x)
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
