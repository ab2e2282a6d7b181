// Package stsrules is the one home of the rules STS imposes on what it is
// asked — session durations, role session names, source identities,
// session tags — and of the conventions every credsidecar package shares
// about its answers: the SDKs' stale window and how an access key id is
// shortened for a log line. config validates with them, the agent builds
// its requests with them and the embedded STS enforces them, so the three
// cannot drift apart. The limits follow the STS API reference (AssumeRole's
// request parameters and the Tag data type; shared/reference, section C).
package stsrules

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/credsidecar/credsidecar/internal/charclass"
)

// Session durations.
const (
	// MinDuration and MaxDuration bound a role session (DurationSeconds
	// 900..43200).
	MinDuration = 15 * time.Minute
	MaxDuration = 12 * time.Hour
	// MinLocalDuration is the floor of the embedded STS's in-process
	// source: local mode lets users watch their apps refresh.
	MinLocalDuration = time.Minute
	// DefaultDuration is STS's DurationSeconds default.
	DefaultDuration = time.Hour
	// ChainMaxDuration caps sessions assumed by role chaining.
	ChainMaxDuration = time.Hour
	// StaleWindow is when SDKs start treating credentials as stale and
	// renewing them on every call (botocore's and the Java SDK's 15
	// minutes): a caller should never be handed less.
	StaleWindow = 15 * time.Minute
)

// Session names and source identities.
const (
	// MinSessionNameLen and MaxSessionNameLen bound RoleSessionName and
	// SourceIdentity.
	MinSessionNameLen = 2
	MaxSessionNameLen = 64
	// SessionNamePattern is their character class, as STS's model spells it.
	SessionNamePattern = `[\w+=,.@-]*`
)

// Session tags.
const (
	// MaxTags bounds Tags and TransitiveTagKeys.
	MaxTags = 50
	// MaxTagKeyLen and MaxTagValueLen are in characters.
	MaxTagKeyLen   = 128
	MaxTagValueLen = 256
	// TagKeyPattern and TagValuePattern are the Tag data type's patterns.
	TagKeyPattern   = `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`
	TagValuePattern = `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`
)

// The patterns' character classes (internal/charclass: no regexps kept
// live for them).
var (
	sessionNameChars = charclass.ASCII(true, "+=,.@-")
	// ExternalIDChars is ExternalId's character class, [\w+=,.@:/-].
	ExternalIDChars = charclass.ASCII(true, "+=,.@:/-")
	tagKeyChars     = charclass.LetterSpaceNumber("_.:/=+-@")
	// tagValueChars also takes '*', which STS accepts in values (wildcard
	// condition values are common) though its documented pattern omits it.
	tagValueChars = charclass.LetterSpaceNumber("_.:/=+-@*")
)

// Tag is a session tag.
type Tag struct{ Key, Value string }

// ValidSessionName reports whether s is a valid RoleSessionName (and
// SourceIdentity, which shares its rule): 2-64 of [\w+=,.@-].
func ValidSessionName(s string) bool {
	return len(s) >= MinSessionNameLen && len(s) <= MaxSessionNameLen && sessionNameChars.All(s)
}

// ReservedSourceIdentity reports whether s uses the prefix STS reserves.
func ReservedSourceIdentity(s string) bool {
	return strings.HasPrefix(strings.ToLower(s), "aws:")
}

// ValidTagKey reports whether k is a valid session tag key.
func ValidTagKey(k string) bool {
	n := utf8.RuneCountInString(k)
	return n >= 1 && n <= MaxTagKeyLen && tagKeyChars.All(k)
}

// ValidTagValue reports whether v is a valid session tag value.
func ValidTagValue(v string) bool {
	return utf8.RuneCountInString(v) <= MaxTagValueLen && tagValueChars.All(v)
}

// SanitizeSessionName makes s acceptable to STS as a RoleSessionName. A
// valid name is kept as it is. Otherwise characters outside [\w+=,.@-]
// become '-', the name is cut to leave room, and "-" and a short hash of
// the original are appended: sanitising, cutting and padding each map
// distinct names to one ("system:serviceaccount:a-b:c" and
// "system:serviceaccount:a:b-c"; two long names that differ only past
// character 64), and distinct callers must never share a session.
func SanitizeSessionName(s string) string {
	if ValidSessionName(s) {
		return s
	}
	out := sessionNameChars.Replace(s, '-')
	if out == "" {
		out = "credsidecar"
	}
	sum := sha256.Sum256([]byte(s))
	suffix := "-" + hex.EncodeToString(sum[:nameHashBytes])
	if len(out) > MaxSessionNameLen-len(suffix) {
		// \w is ASCII in RE2: out is ASCII, so a byte cut is a character cut.
		out = out[:MaxSessionNameLen-len(suffix)]
	}
	return out + suffix
}

// nameHashBytes is the length of a changed session name's hash (8 hex
// characters: 32 bits, against collisions among one role's callers).
const nameHashBytes = 4

// KeyIDSuffix is the last four characters of an access key id: enough to
// correlate log lines, not enough to use. A key id too short to shorten
// yields "" rather than the whole id.
func KeyIDSuffix(id string) string {
	if len(id) < 8 {
		return ""
	}
	return id[len(id)-4:]
}
