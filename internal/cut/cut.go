// Package cut bounds strings that reach the audit file and the logs: a
// value longer than its bound keeps its start and is marked with the
// original's length and a hash, so a reader can still group repeated
// attempts with one long value but a caller cannot grow a record with it.
package cut

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// String returns s if it has at most n bytes; otherwise its first bytes,
// up to n and on a character boundary, followed by
// "…[LEN bytes, sha256 HEX16]" (the original's length and the first 16 hex
// digits of its SHA-256). The result has at most n+51 bytes.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := max(n, 0)
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	sum := sha256.Sum256([]byte(s))
	return s[:i] + "…[" + strconv.Itoa(len(s)) + " bytes, sha256 " + hex.EncodeToString(sum[:8]) + "]"
}
