package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
)

// queryPair is one decoded name=value pair of a query string, in wire order.
type queryPair struct {
	name, value string
}

// uriEncode percent-encodes every byte outside the RFC 3986 unreserved set
// (A-Z a-z 0-9 - _ . ~) with uppercase hex, and keeps '/' when keepSlash is
// set. Space becomes %20, never '+'.
func uriEncode(s string, keepSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || (keepSlash && c == '/') {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0x0f])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// normalizePath removes "." and ".." segments and empty segments (runs of
// '/') from a wire path, the way AWS services other than S3 normalize it and
// the way botocore signs it (botocore.utils.remove_dot_segments). It works on
// the still-encoded path, so "%2E" is not a dot, again as botocore does.
func normalizePath(p string) string {
	if p == "" {
		return "/"
	}
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	var b strings.Builder
	if p[0] == '/' {
		b.WriteByte('/')
	}
	b.WriteString(strings.Join(out, "/"))
	if p[len(p)-1] == '/' && len(out) > 0 {
		b.WriteByte('/')
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// canonicalURI encodes a wire path once more, keeping '/'. The wire path is
// already percent-encoded, so a space arrives as "%20" and is signed as
// "%2520": non-S3 services double-encode, and both aws-sdk-go-v2
// (httpbinding.EscapePath over URL.EscapedPath) and botocore (quote over the
// urlsplit path) do exactly this.
func canonicalURI(wirePath string, normalize bool) string {
	if normalize {
		wirePath = normalizePath(wirePath)
	}
	if wirePath == "" {
		wirePath = "/"
	}
	return uriEncode(wirePath, true)
}

// canonicalQuery encodes every name and value, then sorts by encoded name and
// then encoded value. Sorting after encoding matters: "a/b" sorts after "a-b"
// but "a%2Fb" sorts before it, and SigV4 sorts the encoded form.
func canonicalQuery(pairs []queryPair) string {
	enc := make([]queryPair, len(pairs))
	for i, p := range pairs {
		enc[i] = queryPair{uriEncode(p.name, false), uriEncode(p.value, false)}
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].name != enc[j].name {
			return enc[i].name < enc[j].name
		}
		return enc[i].value < enc[j].value
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.name)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
	return b.String()
}

// canonicalHeaderValue trims a header value and collapses internal runs of
// spaces into one, as the SigV4 "Trimall" step and aws-sdk-go-v2's
// StripExcessSpaces do. Only spaces are collapsed inside the value; leading
// and trailing tabs are trimmed too because net/http already strips them.
func canonicalHeaderValue(v string) string {
	v = strings.Trim(v, " \t")
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	b.Grow(len(v))
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// buildCanonicalRequest joins the six canonical request lines. names and
// values are aligned: values[i] is the already canonical value of names[i].
func buildCanonicalRequest(method, uri, query string, names, values []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(method)
	b.WriteByte('\n')
	b.WriteString(uri)
	b.WriteByte('\n')
	b.WriteString(query)
	b.WriteByte('\n')
	for i, n := range names {
		b.WriteString(n)
		b.WriteByte(':')
		if i < len(values) { // a hand-edited Request must not panic
			b.WriteString(values[i])
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(names, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// StringToSign returns the SigV4 string to sign: the algorithm, the request
// timestamp in ISO 8601 basic format (20060102T150405Z), the credential scope
// (date/region/service/aws4_request) and the hex SHA-256 of the canonical
// request, one per line.
func StringToSign(amzDate, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// SigningKey derives the SigV4 signing key: HMAC-SHA256 chained from
// "AWS4"+secret over the scope date (yyyymmdd), region, service and the
// literal "aws4_request".
func SigningKey(secretAccessKey, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secretAccessKey), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, terminator)
}

// Sign returns the hex signature of stringToSign under a key from SigningKey.
func Sign(signingKey []byte, stringToSign string) string {
	return hex.EncodeToString(hmacSHA256(signingKey, stringToSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
