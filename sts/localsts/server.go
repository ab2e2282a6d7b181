package localsts

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/internal/clock"
	"github.com/credsidecar/credsidecar/sts/sigv4"
	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// Wire constants of the STS Query API (reference C.1).
const (
	// APIVersion is the only Version the Query API serves.
	APIVersion = "2011-06-15"
	// Namespace is the XML namespace of every response.
	Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	// DefaultMaxBodyBytes bounds a request body; STS requests are small.
	DefaultMaxBodyBytes = 64 << 10
	// maxListMembers bounds the member index of list parameters.
	maxListMembers = 1000
)

// ServerOptions configure a Server.
type ServerOptions struct {
	// Issuer authorizes and mints; required. Its account may be swapped
	// (config reload) while the server runs.
	Issuer *Issuer
	// Logger receives one debug line per request and one info line per
	// issued credential set; nil discards. Secrets are never logged.
	Logger *zap.Logger
	// Clock is the server's time for SigV4's clock-skew check and the Date
	// header; nil is the wall clock. Token expiry uses the issuer's clock.
	Clock clock.Clock
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// Server is the STS Query API of the emulated account: AssumeRole,
// AssumeRoleWithWebIdentity, GetSessionToken and GetCallerIdentity over
// POST forms and GET queries, SigV4-verified, answering STS's XML.
type Server struct {
	issuer  *Issuer
	log     *zap.Logger
	clk     clock.Clock
	maxBody int64
}

var _ http.Handler = (*Server)(nil)

// NewServer returns a Server for opts.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.Issuer == nil {
		return nil, errors.New("localsts: NewServer needs an Issuer")
	}
	if opts.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("localsts: MaxBodyBytes must not be negative, got %d", opts.MaxBodyBytes)
	}
	s := &Server{issuer: opts.Issuer, log: opts.Logger, clk: opts.Clock, maxBody: opts.MaxBodyBytes}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.clk == nil {
		s.clk = clock.Real{}
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	return s, nil
}

// Handler returns the Query API handler; it serves every path, as STS's
// endpoint does for "/".
func (s *Server) Handler() http.Handler { return s }

// call is one request in flight.
type call struct {
	id     string
	action string
	caller *Principal // nil for anonymous calls
	params url.Values
	ip     netip.Addr
	secure bool
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	c := &call{id: requestID(), secure: r.TLS != nil}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		c.ip = ap.Addr().Unmap()
	}
	status, e := s.serve(w, r, c)
	if e == nil {
		s.log.Debug("sts request",
			zap.String("request_id", c.id), zap.String("action", c.action),
			zap.Int("status", status), zap.Duration("duration", time.Since(start)))
		return
	}
	// A refusal's line carries the message the caller got (AWS's wording,
	// caller and role ARNs, no secret) and the reason behind it.
	caller := "anonymous"
	if c.caller != nil {
		caller = c.caller.ARN
	}
	s.log.Info("sts request refused",
		zap.String("request_id", c.id), zap.String("action", c.action), zap.String("caller", caller),
		zap.Int("status", status), zap.String("code", e.Code), zap.String("message", e.Message),
		zap.String("reason", e.Reason), zap.Duration("duration", time.Since(start)))
}

// serve handles the request and returns what it answered, for the log:
// the status, and the error unless it succeeded.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, c *call) (int, *Error) {
	fail := func(err error) (int, *Error) {
		e := asSTSError(err)
		s.writeError(w, c.id, e)
		return e.Status, e
	}
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		return fail(stsErr(http.StatusMethodNotAllowed, "InvalidAction", "The STS Query API accepts GET and POST, not %s", clipValue(r.Method)))
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return fail(err)
	}
	sig, err := sigv4.Parse(r, body)
	switch {
	case errors.Is(err, sigv4.ErrNotSigned):
		// Only AssumeRoleWithWebIdentity is anonymous.
		if c.params, err = requestParams(r, body, true); err != nil {
			return fail(err)
		}
		if c.action, err = checkAction(c.params); err != nil {
			return fail(err)
		}
		if c.action != "AssumeRoleWithWebIdentity" {
			return fail(err2sts(sigv4.ErrNotSigned))
		}
	case err != nil:
		return fail(err)
	default:
		if c.caller, err = s.authenticate(sig); err != nil {
			return fail(err)
		}
		// An UNSIGNED-PAYLOAD body is not authenticated: parameters come
		// from the signed query only.
		useBody := !sig.UnsignedPayload
		if !useBody && len(bytes.TrimSpace(body)) > 0 {
			return fail(stsErr(400, "IncompleteSignature", "The request body is not covered by the signature (UNSIGNED-PAYLOAD); sign the payload or send the parameters in the query string"))
		}
		if c.params, err = requestParams(r, body, useBody); err != nil {
			return fail(err)
		}
		if c.action, err = checkAction(c.params); err != nil {
			return fail(err)
		}
	}
	result, err := s.dispatch(r.Context(), c)
	if err != nil {
		return fail(err)
	}
	s.writeResult(w, c, result)
	return http.StatusOK, nil
}

func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	tooLarge := stsErr(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "Request body is larger than %d bytes", s.maxBody)
	if r.ContentLength > s.maxBody {
		return nil, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, stsErr(400, "IncompleteBody", "The request body could not be read")
	}
	return body, nil
}

// authenticate finds the secret of the signing key and verifies the
// signature: long-term AKIA keys belong to the account's users; temporary
// ASIA keys carry their identity in the session token, which must itself
// be signed.
func (s *Server) authenticate(sig *sigv4.Request) (*Principal, error) {
	if sig.Service != "sts" {
		return nil, stsErr(http.StatusForbidden, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'. ")
	}
	invalid := stsErr(http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
	acct := s.issuer.Account()
	var (
		caller *Principal
		secret string
	)
	if strings.HasPrefix(sig.AccessKeyID, "ASIA") {
		if sig.SessionToken == "" {
			return nil, invalid
		}
		if !sig.SessionTokenSigned {
			return nil, stsErr(400, "IncompleteSignature", "The X-Amz-Security-Token header must be signed: add x-amz-security-token to SignedHeaders")
		}
		claims, sec, err := s.issuer.Verify(sig.AccessKeyID, sig.SessionToken)
		if err != nil {
			return nil, err
		}
		if caller, err = s.issuer.PrincipalOf(claims); err != nil {
			return nil, err
		}
		secret = sec
	} else {
		u, ok := acct.UserByKey(sig.AccessKeyID)
		if !ok || sig.SessionToken != "" || u.SecretAccessKey == "" {
			return nil, invalid
		}
		caller, secret = UserPrincipal(acct, u), u.SecretAccessKey
	}
	if err := sig.Verify(secret, s.clk.Now()); err != nil {
		return nil, err
	}
	return caller, nil
}

// requestParams merges the query (minus SigV4's own parameters) and, when
// useBody, the form body. A POST body must be a form.
func requestParams(r *http.Request, body []byte, useBody bool) (url.Values, error) {
	params := url.Values{}
	_, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	if r.RequestURI == "" && r.URL != nil {
		rawQuery = r.URL.RawQuery
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, stsErr(400, "MalformedQueryString", "The query string is not validly encoded")
	}
	for k, vs := range q {
		if !strings.HasPrefix(k, "X-Amz-") {
			params[k] = append(params[k], vs...)
		}
	}
	if useBody && len(body) > 0 && r.Method == http.MethodPost {
		if ct := r.Header.Get("Content-Type"); ct != "" {
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/x-www-form-urlencoded" {
				return nil, stsErr(400, "InvalidParameterValue", "Content-Type must be application/x-www-form-urlencoded")
			}
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, stsErr(400, "MalformedQueryString", "The request body is not a validly encoded form")
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	return params, nil
}

// operations are the actions the emulator serves.
var operations = map[string]bool{
	"AssumeRole": true, "AssumeRoleWithWebIdentity": true, "GetSessionToken": true, "GetCallerIdentity": true,
}

func checkAction(p url.Values) (string, error) {
	action, ok := first(p, "Action")
	if !ok || action == "" {
		return "", stsErr(400, "MissingAction", "Missing Action")
	}
	version, ok := first(p, "Version")
	if !ok || version == "" {
		return action, stsErr(400, "MissingParameter", "The request must contain the parameter Version")
	}
	if version != APIVersion || !operations[action] {
		return action, stsErr(400, "InvalidAction", "Could not find operation %s for version %s", clipValue(action), clipValue(version))
	}
	return action, nil
}

func first(p url.Values, name string) (string, bool) {
	vs, ok := p[name]
	if !ok || len(vs) == 0 {
		return "", false
	}
	return vs[0], true
}

// dispatch runs the operation and returns its Result element.
func (s *Server) dispatch(ctx context.Context, c *call) (any, error) {
	switch c.action {
	case "GetCallerIdentity":
		return &callerIdentityResult{UserID: c.caller.UserID, Account: c.caller.Account, ARN: c.caller.ARN}, nil
	case "AssumeRole":
		in, err := assumeRoleInput(c.params)
		if err != nil {
			return nil, err
		}
		in.SourceIP, in.SecureTransport = c.ip, c.secure
		out, err := s.issuer.AssumeRole(ctx, c.caller, in)
		if err != nil {
			return nil, err
		}
		s.logIssue(c, out)
		res := &assumeRoleResult{Credentials: credentialsXML(out), SourceIdentity: out.Claims.SourceIdentity}
		res.AssumedRoleUser = assumedRoleXML(out.Claims)
		res.PackedPolicySize = packedPolicySize(in.Policy, in.PolicyARNs, in.Tags)
		return res, nil
	case "GetSessionToken":
		var in SessionTokenInput
		if d, ok, err := durationParam(c.params); err != nil {
			return nil, err
		} else if ok {
			in.SetDuration(d)
		}
		in.SerialNumber, _ = first(c.params, "SerialNumber")
		in.TokenCode, _ = first(c.params, "TokenCode")
		out, err := s.issuer.GetSessionToken(ctx, c.caller, in)
		if err != nil {
			return nil, err
		}
		s.logIssue(c, out)
		return &sessionTokenResult{Credentials: credentialsXML(out)}, nil
	case "AssumeRoleWithWebIdentity":
		in, err := webIdentityInput(c.params)
		if err != nil {
			return nil, err
		}
		in.SourceIP, in.SecureTransport = c.ip, c.secure
		out, err := s.issuer.AssumeRoleWithWebIdentity(ctx, in)
		if err != nil {
			return nil, err
		}
		s.logIssue(c, out.Issued)
		res := &webIdentityResult{
			Credentials: credentialsXML(out.Issued), AssumedRoleUser: assumedRoleXML(out.Claims),
			SubjectFromWebIdentityToken: out.SubjectFromWebIdentityToken, Provider: out.Provider, Audience: out.Audience,
			PackedPolicySize: packedPolicySize(in.Policy, in.PolicyARNs, nil),
		}
		return res, nil
	}
	return nil, stsErr(400, "InvalidAction", "Could not find operation %s for version %s", clipValue(c.action), APIVersion)
}

func (s *Server) logIssue(c *call, out *Issued) {
	caller := "anonymous"
	if c.caller != nil {
		caller = c.caller.ARN
	}
	fields := []zap.Field{
		zap.String("request_id", c.id), zap.String("action", c.action), zap.String("caller", caller),
		zap.Time("expiration", out.Expiration), zap.String("access_key_id_last4", stsrules.KeyIDSuffix(out.AccessKeyID)),
	}
	if out.Claims.Kind == "role" {
		fields = append(fields, zap.String("role", out.Claims.RoleARN), zap.String("session_name", out.Claims.SessionName))
	}
	s.log.Info("sts credentials issued", fields...)
}

// packedPolicySize is STS's PackedPolicySize: the percentage of the packed
// limit that session policies and tags use; absent when none are passed.
func packedPolicySize(policy string, arns []string, tags []Tag) *int {
	if policy == "" && len(arns) == 0 && len(tags) == 0 {
		return nil
	}
	n := len(policy)
	for _, a := range arns {
		n += len(a)
	}
	for _, t := range tags {
		n += len(t.Key) + len(t.Value)
	}
	pct := (n*100 + maxPolicyChars - 1) / maxPolicyChars
	return &pct
}

// Parameter decoding of the Query API.

func durationParam(p url.Values) (time.Duration, bool, error) {
	v, ok := first(p, "DurationSeconds")
	if !ok {
		return 0, false, nil
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil {
		return 0, false, constraintErr("durationSeconds", v, "Member must be an integer")
	}
	return time.Duration(n) * time.Second, true, nil
}

// required returns a required parameter, or STS's "must not be null".
func required(p url.Values, name, member string) (string, error) {
	v, ok := first(p, name)
	if !ok {
		return "", validationErr("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
	}
	return v, nil
}

// optional returns an optional string parameter; present and empty fails
// when the member has a minimum length.
func optional(p url.Values, name, member string, minLen int) (string, bool, error) {
	v, ok := first(p, name)
	if ok && len(v) < minLen {
		return "", false, constraintErr(member, v, fmt.Sprintf("Member must have length greater than or equal to %d", minLen))
	}
	return v, ok, nil
}

// members decodes a query-protocol list: Name.member.N[.Field]=value, in
// index order. fields is nil for lists of strings.
func members(p url.Values, name string, fields []string) ([]map[string]string, error) {
	prefix := name + ".member."
	byIndex := map[int]map[string]string{}
	for k, vs := range p {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok || len(vs) == 0 {
			continue
		}
		idx, field, _ := strings.Cut(rest, ".")
		n, err := strconv.Atoi(idx)
		if err != nil || n < 1 || n > maxListMembers {
			return nil, stsErr(400, "InvalidParameterValue", "Invalid list index in parameter %s", clipValue(k))
		}
		if (fields == nil) != (field == "") || (fields != nil && !contains(fields, field)) {
			return nil, stsErr(400, "InvalidParameterValue", "Unknown list member parameter %s", clipValue(k))
		}
		if byIndex[n] == nil {
			byIndex[n] = map[string]string{}
		}
		byIndex[n][field] = vs[0]
	}
	idx := make([]int, 0, len(byIndex))
	for n := range byIndex {
		idx = append(idx, n)
	}
	sort.Ints(idx)
	out := make([]map[string]string, 0, len(idx))
	for _, n := range idx {
		out = append(out, byIndex[n])
	}
	return out, nil
}

func stringMembers(p url.Values, name string) ([]string, error) {
	ms, err := members(p, name, nil)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m[""])
	}
	return out, nil
}

func policyARNParams(p url.Values) ([]string, error) {
	ms, err := members(p, "PolicyArns", []string{"arn"})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range ms {
		a, ok := m["arn"]
		if !ok {
			return nil, validationErr("1 validation error detected: Value null at 'policyArns.member.arn' failed to satisfy constraint: Member must not be null")
		}
		out = append(out, a)
	}
	return out, nil
}

func tagParams(p url.Values) ([]Tag, error) {
	ms, err := members(p, "Tags", []string{"Key", "Value"})
	if err != nil {
		return nil, err
	}
	var out []Tag
	for _, m := range ms {
		k, ok1 := m["Key"]
		v, ok2 := m["Value"]
		if !ok1 {
			return nil, validationErr("1 validation error detected: Value null at 'tags.member.key' failed to satisfy constraint: Member must not be null")
		}
		if !ok2 {
			return nil, validationErr("1 validation error detected: Value null at 'tags.member.value' failed to satisfy constraint: Member must not be null")
		}
		out = append(out, Tag{Key: k, Value: v})
	}
	return out, nil
}

func assumeRoleInput(p url.Values) (AssumeRoleInput, error) {
	var in AssumeRoleInput
	var err error
	if in.RoleARN, err = required(p, "RoleArn", "roleArn"); err != nil {
		return in, err
	}
	if in.RoleSessionName, err = required(p, "RoleSessionName", "roleSessionName"); err != nil {
		return in, err
	}
	if d, ok, err := durationParam(p); err != nil {
		return in, err
	} else if ok {
		in.SetDuration(d)
	}
	if v, ok := first(p, "ExternalId"); ok {
		in.SetExternalID(v)
	}
	if in.Policy, _, err = optional(p, "Policy", "policy", 1); err != nil {
		return in, err
	}
	if in.SourceIdentity, _, err = optional(p, "SourceIdentity", "sourceIdentity", 2); err != nil {
		return in, err
	}
	if in.SerialNumber, _, err = optional(p, "SerialNumber", "serialNumber", 9); err != nil {
		return in, err
	}
	if in.TokenCode, _, err = optional(p, "TokenCode", "tokenCode", 6); err != nil {
		return in, err
	}
	if in.PolicyARNs, err = policyARNParams(p); err != nil {
		return in, err
	}
	if in.Tags, err = tagParams(p); err != nil {
		return in, err
	}
	if in.TransitiveTagKeys, err = stringMembers(p, "TransitiveTagKeys"); err != nil {
		return in, err
	}
	return in, nil
}

func webIdentityInput(p url.Values) (WebIdentityInput, error) {
	var in WebIdentityInput
	var err error
	if in.RoleARN, err = required(p, "RoleArn", "roleArn"); err != nil {
		return in, err
	}
	if in.RoleSessionName, err = required(p, "RoleSessionName", "roleSessionName"); err != nil {
		return in, err
	}
	if in.WebIdentityToken, err = required(p, "WebIdentityToken", "webIdentityToken"); err != nil {
		return in, err
	}
	if d, ok, err := durationParam(p); err != nil {
		return in, err
	} else if ok {
		in.SetDuration(d)
	}
	if in.ProviderID, _, err = optional(p, "ProviderId", "providerId", 4); err != nil {
		return in, err
	}
	if in.Policy, _, err = optional(p, "Policy", "policy", 1); err != nil {
		return in, err
	}
	if in.PolicyARNs, err = policyARNParams(p); err != nil {
		return in, err
	}
	return in, nil
}

// Response documents (reference C.3, C.4).

type credentialsElem struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumedRoleUserElem struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	ARN           string `xml:"Arn"`
}

type assumeRoleResult struct {
	XMLName          xml.Name            `xml:"AssumeRoleResult"`
	Credentials      credentialsElem     `xml:"Credentials"`
	AssumedRoleUser  assumedRoleUserElem `xml:"AssumedRoleUser"`
	PackedPolicySize *int                `xml:"PackedPolicySize,omitempty"`
	SourceIdentity   string              `xml:"SourceIdentity,omitempty"`
}

type webIdentityResult struct {
	XMLName                     xml.Name            `xml:"AssumeRoleWithWebIdentityResult"`
	Credentials                 credentialsElem     `xml:"Credentials"`
	SubjectFromWebIdentityToken string              `xml:"SubjectFromWebIdentityToken"`
	AssumedRoleUser             assumedRoleUserElem `xml:"AssumedRoleUser"`
	PackedPolicySize            *int                `xml:"PackedPolicySize,omitempty"`
	Provider                    string              `xml:"Provider"`
	Audience                    string              `xml:"Audience"`
}

type sessionTokenResult struct {
	XMLName     xml.Name        `xml:"GetSessionTokenResult"`
	Credentials credentialsElem `xml:"Credentials"`
}

type callerIdentityResult struct {
	XMLName xml.Name `xml:"GetCallerIdentityResult"`
	UserID  string   `xml:"UserId"`
	Account string   `xml:"Account"`
	ARN     string   `xml:"Arn"`
}

type responseEnvelope struct {
	XMLName   xml.Name
	Xmlns     string `xml:"xmlns,attr"`
	Result    any
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type errorEnvelope struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

// expirationLayout is how STS writes Expiration.
const expirationLayout = "2006-01-02T15:04:05Z"

func credentialsXML(out *Issued) credentialsElem {
	return credentialsElem{
		AccessKeyID: out.AccessKeyID, SecretAccessKey: out.SecretAccessKey,
		SessionToken: out.SessionToken, Expiration: out.Expiration.UTC().Format(expirationLayout),
	}
}

func assumedRoleXML(c *SessionClaims) assumedRoleUserElem {
	u := c.AssumedRole()
	return assumedRoleUserElem(u)
}

func (s *Server) writeHeaders(w http.ResponseWriter, id string, status int) {
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("X-Amzn-Requestid", id)
	h.Set("Date", s.clk.Now().UTC().Format(http.TimeFormat))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
}

func (s *Server) writeResult(w http.ResponseWriter, c *call, result any) {
	env := responseEnvelope{
		XMLName: xml.Name{Local: c.action + "Response"}, Xmlns: Namespace,
		Result: result, RequestID: c.id,
	}
	body, err := xml.Marshal(env)
	if err != nil {
		s.writeError(w, c.id, stsErr(500, "InternalFailure", "The request processing has failed because of an unknown error."))
		return
	}
	s.writeHeaders(w, c.id, http.StatusOK)
	w.Write(body)
}

func (s *Server) writeError(w http.ResponseWriter, id string, e *Error) {
	var env errorEnvelope
	env.Xmlns = Namespace
	env.Error.Type = "Sender"
	if e.Status >= 500 {
		env.Error.Type = "Receiver"
	}
	env.Error.Code, env.Error.Message, env.RequestID = e.Code, e.Message, id
	body, _ := xml.Marshal(env) // strings only: cannot fail
	s.writeHeaders(w, id, e.Status)
	w.Write(body)
}

// asSTSError maps any error to what the client sees; unknown errors become
// InternalFailure without their text.
func asSTSError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if se := err2sts(err); se != nil {
		return se
	}
	return stsErr(500, "InternalFailure", "The request processing has failed because of an unknown error.")
}

func err2sts(err error) *Error {
	var se *sigv4.Error
	if errors.As(err, &se) {
		return &Error{Code: se.Code, Status: se.Status, Message: se.Msg}
	}
	return nil
}

// requestID returns a random UUID (version 4), as STS's request ids are.
func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
