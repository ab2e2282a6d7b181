// Package sigv4 verifies AWS Signature Version 4 on the server side: it
// parses the signature of an incoming request (Authorization header or
// presigned query), rebuilds the canonical request from what arrived on the
// wire and checks the signature and the clock. It exists because
// aws-sdk-go-v2 keeps its canonicalization helpers internal, and because a
// verifier must canonicalize from the client's SignedHeaders list rather
// than from its own choice of headers, which a signer never does.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Constants of the SigV4 wire format and of the checks Verify applies.
const (
	// Algorithm is the only signing algorithm accepted.
	Algorithm = "AWS4-HMAC-SHA256"
	// UnsignedPayload is the payload hash a client uses to leave the body out
	// of the signature.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	// MaxSkew is the largest accepted distance between the request time and
	// the server clock.
	MaxSkew = 5 * time.Minute
	// MaxPresignExpiry is the largest accepted X-Amz-Expires (7 days).
	MaxPresignExpiry = 7 * 24 * time.Hour
	// DefaultPresignExpiry applies to presigned requests without
	// X-Amz-Expires: aws-sdk-go-v2's STS presign client omits it, and STS
	// honours such URLs (EKS tokens) for 15 minutes.
	DefaultPresignExpiry = 15 * time.Minute

	amzDateLayout   = "20060102T150405Z"
	scopeDateLayout = "20060102"
	terminator      = "aws4_request"

	paramAlgorithm     = "X-Amz-Algorithm"
	paramCredential    = "X-Amz-Credential"
	paramDate          = "X-Amz-Date"
	paramSignedHeaders = "X-Amz-SignedHeaders"
	paramSignature     = "X-Amz-Signature"
	paramSecurityToken = "X-Amz-Security-Token"
	paramExpires       = "X-Amz-Expires"
)

// Request is the parsed signature of one HTTP request, with a snapshot of
// everything needed to rebuild its canonical request, so Verify does not need
// the *http.Request any more.
type Request struct {
	// AccessKeyID is the first element of the credential scope.
	AccessKeyID string
	// Date is the signing time, from X-Amz-Date, or from the Date header when
	// X-Amz-Date is absent (header-signed requests only), in UTC.
	Date time.Time
	// Region and Service come from the credential scope; they are not
	// checked here (STS accepts any region; the caller may insist on "sts").
	Region, Service string
	// SignedHeaders is the client's list of signed header names, lowercase,
	// in the order the client gave them.
	SignedHeaders []string
	// Signature is the hex signature the client sent.
	Signature string
	// SessionToken is the X-Amz-Security-Token header or query parameter, ""
	// if none.
	SessionToken string
	// SessionTokenSigned reports whether SessionToken is covered by the
	// signature: always for presigned requests (the query is signed), and
	// for header-signed ones when x-amz-security-token is in SignedHeaders.
	SessionTokenSigned bool
	// Presigned is true for query-string (presigned URL) authentication.
	Presigned bool
	// Expires is the lifetime of a presigned request from Date
	// (X-Amz-Expires, or DefaultPresignExpiry when absent); zero otherwise.
	Expires time.Duration
	// UnsignedPayload is set by a successful Verify when the signature covers
	// UNSIGNED-PAYLOAD instead of the body hash: the body is then not
	// authenticated, and a caller that reads parameters from it must not
	// trust them beyond what TLS gives.
	UnsignedPayload bool

	amzDate       string // the timestamp exactly as it enters the string to sign
	scopeDate     string // yyyymmdd of the credential scope
	method        string // request method as received
	wirePath      string // request path as sent, still percent-encoded
	query         []queryPair
	headerValues  []string // canonical value of SignedHeaders[i]
	payloadHashes []string // candidate payload hashes, tried in order
	bodyHash      string   // hex sha256 of the body
	claimedHash   string   // X-Amz-Content-Sha256 when it is a hex hash
}

// Parse extracts the signature fields of r, from the Authorization header or
// from a presigned query (X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date,
// X-Amz-SignedHeaders, X-Amz-Signature, X-Amz-Security-Token,
// X-Amz-Expires). body is the full request body already read by the caller;
// r.Body is not read. A request with no signature at all returns
// ErrNotSigned. Every other failure is an *Error, mostly
// IncompleteSignature.
func Parse(r *http.Request, body []byte) (*Request, error) {
	wirePath, rawQuery := requestTarget(r)
	query, err := parseQuery(rawQuery)
	if err != nil {
		return nil, err
	}

	authValues, hasAuth := headerValues(r.Header, "Authorization")
	presigned := false
	for _, p := range query {
		if p.name == paramAlgorithm || p.name == paramCredential || p.name == paramSignature {
			presigned = true
			break
		}
	}
	switch {
	case !hasAuth && !presigned:
		return nil, ErrNotSigned
	case hasAuth && presigned:
		return nil, incomplete("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified")
	}

	req := &Request{
		method:   r.Method,
		wirePath: wirePath,
	}
	sum := sha256.Sum256(body)
	req.bodyHash = hex.EncodeToString(sum[:])

	if presigned {
		err = req.parsePresigned(query)
	} else {
		if len(authValues) != 1 {
			return nil, incomplete("Only one Authorization header is allowed")
		}
		err = req.parseHeader(r, authValues[0])
		req.query = query
	}
	if err != nil {
		return nil, err
	}

	if req.scopeDate != req.amzDate[:8] {
		return nil, mismatch(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			req.scopeDate, req.amzDate[:8], req.amzDate))
	}

	req.collectHeaders(r)
	if err := req.choosePayloadHashes(r); err != nil {
		return nil, err
	}
	return req, nil
}

// parseHeader reads the Authorization header form:
// "AWS4-HMAC-SHA256 Credential=AKID/yyyymmdd/region/service/aws4_request,
// SignedHeaders=h1;h2, Signature=hex".
func (req *Request) parseHeader(r *http.Request, auth string) error {
	auth = strings.Trim(auth, " \t")
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != Algorithm {
		return incomplete("Unsupported AWS 'algorithm': " + quoteShort(alg) + "; only " + Algorithm + " is supported")
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		part = strings.Trim(part, " \t")
		if part == "" {
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return incomplete("Authorization header component " + quoteShort(part) + " is not of the form key=value")
		}
		switch name {
		case "Credential", "SignedHeaders", "Signature":
		default:
			return incomplete("Authorization header has an unknown component " + quoteShort(name))
		}
		if _, dup := fields[name]; dup {
			return incomplete("Authorization header has a duplicate " + name + " component")
		}
		fields[name] = value
	}
	var missing []string
	for _, name := range []string{"Credential", "SignedHeaders", "Signature"} {
		if _, ok := fields[name]; !ok {
			missing = append(missing, "Authorization header requires '"+name+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return incomplete(strings.Join(missing, " "))
	}
	if err := req.parseCommon(fields["Credential"], fields["SignedHeaders"], fields["Signature"]); err != nil {
		return err
	}

	// The timestamp: X-Amz-Date wins over Date, and whichever is used must be
	// signed, otherwise a captured request could be replayed with a new time.
	if v, ok := headerValues(r.Header, "X-Amz-Date"); ok {
		if len(v) != 1 {
			return incomplete("Only one X-Amz-Date header is allowed")
		}
		if err := req.parseAmzDate(v[0]); err != nil {
			return err
		}
		if !req.signs("x-amz-date") {
			return incomplete("The x-amz-date header must be signed when it is present; SignedHeaders lacks x-amz-date")
		}
	} else if v, ok := headerValues(r.Header, "Date"); ok {
		if len(v) != 1 {
			return incomplete("Only one Date header is allowed")
		}
		t, err := http.ParseTime(v[0])
		if err != nil {
			return incomplete("Date header " + quoteShort(v[0]) + " is not an HTTP date")
		}
		req.Date = t.UTC()
		req.amzDate = req.Date.Format(amzDateLayout)
		if !req.signs("date") {
			return incomplete("The date header must be signed when it carries the request time; SignedHeaders lacks date")
		}
	} else {
		return incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}

	if v, ok := headerValues(r.Header, "X-Amz-Security-Token"); ok {
		if len(v) != 1 {
			return incomplete("Only one X-Amz-Security-Token header is allowed")
		}
		req.SessionToken = v[0]
		req.SessionTokenSigned = req.signs("x-amz-security-token")
	}
	return nil
}

// parsePresigned reads the X-Amz-* query parameters of a presigned URL and
// keeps the rest of the query, minus X-Amz-Signature, for the canonical
// request.
func (req *Request) parsePresigned(query []queryPair) error {
	req.Presigned = true
	params := map[string]string{}
	for _, p := range query {
		switch p.name {
		case paramAlgorithm, paramCredential, paramDate, paramSignedHeaders, paramSignature, paramSecurityToken, paramExpires:
			// A second copy would make the signed value ambiguous.
			if _, dup := params[p.name]; dup {
				return incomplete("Query parameter " + p.name + " appears more than once")
			}
			params[p.name] = p.value
		}
		if p.name != paramSignature {
			req.query = append(req.query, p)
		}
	}
	var missing []string
	for _, name := range []string{paramAlgorithm, paramCredential, paramDate, paramSignedHeaders, paramSignature} {
		if _, ok := params[name]; !ok {
			missing = append(missing, "AWS query-string parameters must include '"+name+"'.")
		}
	}
	if len(missing) > 0 {
		return incomplete(strings.Join(missing, " ") + " Re-examine the query-string parameters.")
	}
	if alg := params[paramAlgorithm]; alg != Algorithm {
		return incomplete("Unsupported AWS 'algorithm': " + quoteShort(alg) + "; only " + Algorithm + " is supported")
	}
	if err := req.parseCommon(params[paramCredential], params[paramSignedHeaders], params[paramSignature]); err != nil {
		return err
	}
	if err := req.parseAmzDate(params[paramDate]); err != nil {
		return err
	}

	req.Expires = DefaultPresignExpiry
	if v, ok := params[paramExpires]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return invalidValue("X-Amz-Expires should be a number of seconds, got " + quoteShort(v))
		}
		if n > int64(MaxPresignExpiry/time.Second) {
			return invalidValue("X-Amz-Expires must be less than a week (in seconds) that is 604800")
		}
		req.Expires = time.Duration(n) * time.Second
	}
	if v, ok := params[paramSecurityToken]; ok {
		req.SessionToken = v
		req.SessionTokenSigned = true
	}
	return nil
}

// parseCommon checks the credential scope, the signed header list and the
// signature, which have the same syntax in both forms.
func (req *Request) parseCommon(credential, signedHeaders, signature string) error {
	parts := strings.Split(credential, "/")
	if len(parts) != 5 {
		return incomplete("Credential " + quoteShort(credential) + " should be of the form <access key>/<yyyymmdd>/<region>/<service>/aws4_request")
	}
	for i, p := range parts {
		if p == "" {
			return incomplete("Credential " + quoteShort(credential) + " has an empty element " + strconv.Itoa(i+1))
		}
	}
	if parts[4] != terminator {
		return incomplete("Credential should be scoped with a valid terminator: 'aws4_request', not " + quoteShort(parts[4]))
	}
	if _, err := parseStrict(scopeDateLayout, parts[1]); err != nil {
		return incomplete("Credential should be scoped to a valid date (yyyymmdd), not " + quoteShort(parts[1]))
	}
	req.AccessKeyID, req.scopeDate, req.Region, req.Service = parts[0], parts[1], parts[2], parts[3]

	if signedHeaders == "" {
		return incomplete("SignedHeaders must not be empty")
	}
	seen := map[string]bool{}
	for _, h := range strings.Split(signedHeaders, ";") {
		if !validHeaderName(h) {
			return incomplete("SignedHeaders has an invalid header name " + quoteShort(h) + "; names must be lowercase tokens")
		}
		if seen[h] {
			return incomplete("SignedHeaders lists " + quoteShort(h) + " more than once")
		}
		seen[h] = true
		req.SignedHeaders = append(req.SignedHeaders, h)
	}
	if !seen["host"] {
		return incomplete("'Host' must be a signed header; SignedHeaders lacks host")
	}

	if len(signature) != sha256.Size*2 {
		return incomplete("Signature should be " + strconv.Itoa(sha256.Size*2) + " hex characters, got " + strconv.Itoa(len(signature)))
	}
	if _, err := hex.DecodeString(signature); err != nil {
		return incomplete("Signature " + quoteShort(signature) + " is not hex")
	}
	req.Signature = signature
	return nil
}

func (req *Request) parseAmzDate(v string) error {
	t, err := parseStrict(amzDateLayout, v)
	if err != nil {
		return incomplete("Date must be in ISO-8601 'basic format' (yyyyMMddTHHmmssZ). Got " + quoteShort(v))
	}
	req.Date, req.amzDate = t, v
	return nil
}

// parseStrict parses v and insists it formats back to itself, so that only
// the exact fixed-width form is accepted.
func parseStrict(layout, v string) (time.Time, error) {
	t, err := time.Parse(layout, v)
	if err != nil {
		return time.Time{}, err
	}
	if t.Format(layout) != v {
		return time.Time{}, fmt.Errorf("parse %q: not in canonical form %s", v, layout)
	}
	return t.UTC(), nil
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func (req *Request) signs(name string) bool {
	for _, h := range req.SignedHeaders {
		if h == name {
			return true
		}
	}
	return false
}

// collectHeaders snapshots the canonical value of every signed header. A
// signed header that is absent canonicalizes to an empty value, so the
// signature simply fails to match.
func (req *Request) collectHeaders(r *http.Request) {
	req.headerValues = make([]string, len(req.SignedHeaders))
	for i, name := range req.SignedHeaders {
		var values []string
		switch name {
		case "host":
			// net/http moves Host out of the header map into r.Host, and keeps
			// the port when the client sent one, which is what it signed.
			host := r.Host
			if host == "" && r.URL != nil {
				host = r.URL.Host
			}
			values = []string{host}
		case "content-length":
			if v, ok := headerValues(r.Header, "Content-Length"); ok {
				values = v
			} else if r.ContentLength >= 0 {
				// Client-side requests keep the length in ContentLength only.
				values = []string{strconv.FormatInt(r.ContentLength, 10)}
			}
		case "transfer-encoding":
			if v, ok := headerValues(r.Header, "Transfer-Encoding"); ok {
				values = v
			} else {
				// net/http moves it out of the map; copy, the loop below edits values.
				values = slices.Clone(r.TransferEncoding)
			}
		default:
			values, _ = headerValues(r.Header, name)
		}
		for j, v := range values {
			values[j] = canonicalHeaderValue(v)
		}
		req.headerValues[i] = strings.Join(values, ",")
	}
}

// choosePayloadHashes decides which payload hashes the signature may cover.
func (req *Request) choosePayloadHashes(r *http.Request) error {
	if v, ok := headerValues(r.Header, "X-Amz-Content-Sha256"); ok {
		if len(v) != 1 {
			return invalidValue("Only one X-Amz-Content-Sha256 header is allowed")
		}
		claimed := v[0]
		switch {
		case claimed == UnsignedPayload:
		case len(claimed) == sha256.Size*2 && isHex(claimed):
			// Checked against the body in Verify: signing this header
			// without checking it would let the body change under a
			// valid signature.
			req.claimedHash = claimed
		default:
			return invalidValue("X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD or a hex SHA-256, got " + quoteShort(claimed))
		}
		req.payloadHashes = []string{claimed}
		return nil
	}
	if req.Presigned {
		// A presigned URL cannot know its body, so SigV4 says
		// UNSIGNED-PAYLOAD; but aws-sdk-go-v2's STS presign client (EKS
		// tokens) and botocore's SigV4QueryAuth sign the hash of the
		// (empty) body instead. Accepting either is safe: the body hash only
		// matches the body that was signed.
		req.payloadHashes = []string{UnsignedPayload, req.bodyHash}
		return nil
	}
	req.payloadHashes = []string{req.bodyHash}
	return nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// uriCandidates returns the canonical URIs to try: the normalized path first
// (the SigV4 rule for non-S3 services, and what botocore signs), then the
// path as sent when it differs, because aws-sdk-go-v2 signs the path without
// normalizing it. Both commit to the same wire path.
func (req *Request) uriCandidates() []string {
	norm := canonicalURI(req.wirePath, true)
	raw := canonicalURI(req.wirePath, false)
	if raw == norm {
		return []string{norm}
	}
	return []string{norm, raw}
}

// Scope returns the credential scope without the access key:
// yyyymmdd/region/service/aws4_request.
func (req *Request) Scope() string {
	return req.scopeDate + "/" + req.Region + "/" + req.Service + "/" + terminator
}

// CanonicalRequest returns the canonical request Verify tries first (the
// normalized path and the first candidate payload hash), for debugging and
// tests. Verify may also try the unnormalized path and, for presigned
// requests, the body hash in place of UNSIGNED-PAYLOAD.
func (req *Request) CanonicalRequest() string {
	payloadHash := req.bodyHash
	if len(req.payloadHashes) > 0 {
		payloadHash = req.payloadHashes[0]
	}
	return req.canonicalRequest(req.uriCandidates()[0], payloadHash)
}

// StringToSign returns the string to sign of CanonicalRequest.
func (req *Request) StringToSign() string {
	return StringToSign(req.amzDate, req.Scope(), req.CanonicalRequest())
}

func (req *Request) canonicalRequest(uri, payloadHash string) string {
	return buildCanonicalRequest(req.method, uri, canonicalQuery(req.query), req.SignedHeaders, req.headerValues, payloadHash)
}

// Verify checks the signature with the secret key, then the time: the
// request time must be within MaxSkew of now for header-signed requests; a
// presigned request is valid from Date-MaxSkew to Date+Expires. The
// signature is checked first so that only holders of the secret learn about
// the server clock. Failures are *Error values.
func (req *Request) Verify(secretAccessKey string, now time.Time) error {
	if req.claimedHash != "" && !strings.EqualFold(req.claimedHash, req.bodyHash) {
		return mismatch("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	want, err := hex.DecodeString(req.Signature)
	if err != nil {
		// Parse already rejects this; kept so a hand-built Request cannot panic.
		return incomplete("Signature is not hex")
	}
	key := SigningKey(secretAccessKey, req.scopeDate, req.Region, req.Service)
	scope := req.Scope()
	query := canonicalQuery(req.query)
	matched, unsigned := false, false
	for _, uri := range req.uriCandidates() {
		for _, ph := range req.payloadHashes {
			creq := buildCanonicalRequest(req.method, uri, query, req.SignedHeaders, req.headerValues, ph)
			got := hmacSHA256(key, StringToSign(req.amzDate, scope, creq))
			// Every candidate is computed and compared in constant time; the
			// loop count depends only on the request's shape.
			if hmac.Equal(got, want) {
				matched, unsigned = true, ph == UnsignedPayload
			}
		}
	}
	if !matched {
		return mismatch("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}

	now = now.UTC()
	if req.Presigned {
		if now.Before(req.Date.Add(-MaxSkew)) {
			return notYetCurrent(req.amzDate, now)
		}
		if now.After(req.Date.Add(req.Expires)) {
			return &Error{Code: CodeRequestExpired, Status: http.StatusBadRequest,
				Msg: "Request has expired: " + req.amzDate + " + " + strconv.FormatInt(int64(req.Expires/time.Second), 10) + "s is earlier than " + now.Format(amzDateLayout)}
		}
	} else {
		if now.Sub(req.Date) > MaxSkew {
			return mismatch("Signature expired: " + req.amzDate + " is now earlier than " +
				now.Add(-MaxSkew).Format(amzDateLayout) + " (" + now.Format(amzDateLayout) + " - 5 min.)")
		}
		if req.Date.Sub(now) > MaxSkew {
			return notYetCurrent(req.amzDate, now)
		}
	}
	req.UnsignedPayload = unsigned
	return nil
}

func notYetCurrent(amzDate string, now time.Time) *Error {
	return mismatch("Signature not yet current: " + amzDate + " is still later than " +
		now.Add(MaxSkew).Format(amzDateLayout) + " (" + now.Format(amzDateLayout) + " + 5 min.)")
}

// CanonicalRequest parses r and returns the canonical request Verify tries
// first; a convenience for debugging a client that fails to verify.
func CanonicalRequest(r *http.Request, body []byte) (string, error) {
	req, err := Parse(r, body)
	if err != nil {
		return "", err
	}
	return req.CanonicalRequest(), nil
}

// requestTarget returns the path and raw query exactly as the client sent
// them. RequestURI is the untouched request line of a server request, so it
// survives middleware that rewrites r.URL; client-side requests (tests) fall
// back to r.URL.
func requestTarget(r *http.Request) (path, rawQuery string) {
	if strings.HasPrefix(r.RequestURI, "/") {
		path, rawQuery, _ = strings.Cut(r.RequestURI, "?")
		return path, rawQuery
	}
	if r.URL == nil {
		return "/", ""
	}
	return r.URL.EscapedPath(), r.URL.RawQuery
}

// parseQuery splits a raw query into decoded pairs in wire order. Unlike
// url.ParseQuery it keeps ';' as data and fails on a bad escape, because a
// value we cannot decode is a value we cannot canonicalize. '+' decodes to a
// space, as aws-sdk-go-v2 reads it before re-encoding it as %20.
func parseQuery(raw string) ([]queryPair, error) {
	var pairs []queryPair
	for _, piece := range strings.Split(raw, "&") {
		if piece == "" {
			continue
		}
		name, value, _ := strings.Cut(piece, "=")
		n, err := url.QueryUnescape(name)
		if err != nil {
			return nil, invalidValue("Query parameter name " + quoteShort(name) + " is not validly percent-encoded")
		}
		v, err := url.QueryUnescape(value)
		if err != nil {
			return nil, invalidValue("Query parameter value of " + quoteShort(n) + " is not validly percent-encoded")
		}
		pairs = append(pairs, queryPair{n, v})
	}
	return pairs, nil
}

// headerValues returns all values of the header named name, matching names
// case-insensitively because hand-built requests need not use the canonical
// MIME form. The result is a fresh slice. ok reports presence.
func headerValues(h http.Header, name string) (values []string, ok bool) {
	if v, found := h[http.CanonicalHeaderKey(name)]; found {
		values, ok = append(values, v...), true
	}
	canon := http.CanonicalHeaderKey(name)
	var extra []string
	for k := range h {
		if k != canon && strings.EqualFold(k, name) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		for _, k := range extra {
			values, ok = append(values, h[k]...), true
		}
	}
	return values, ok
}
