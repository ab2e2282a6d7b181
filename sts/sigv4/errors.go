package sigv4

import (
	"net/http"
	"strconv"
)

// Error codes carried by Error, spelled as STS puts them in the <Code>
// element of an error response.
const (
	// CodeIncompleteSignature marks a signature that cannot be checked at all:
	// a malformed Authorization header or presigned query, a missing required
	// field, an unknown algorithm, a bad scope or date format.
	CodeIncompleteSignature = "IncompleteSignature"
	// CodeMissingAuthenticationToken marks a request that carries no
	// signature where one is required.
	CodeMissingAuthenticationToken = "MissingAuthenticationToken"
	// CodeSignatureDoesNotMatch marks a well-formed signature that is wrong,
	// or one outside the allowed clock skew (STS uses this code for both).
	CodeSignatureDoesNotMatch = "SignatureDoesNotMatch"
	// CodeRequestExpired marks a presigned request used after its expiry.
	CodeRequestExpired = "RequestExpired"
	// CodeInvalidParameterValue marks a signing parameter whose value is
	// malformed, such as X-Amz-Expires or X-Amz-Content-Sha256.
	CodeInvalidParameterValue = "InvalidParameterValue"
)

// Error is a signature verification failure, carrying the STS error code and
// HTTP status the server should answer with. Msg is meant for the <Message>
// element: it never contains the secret key, the expected signature or the
// canonical request.
type Error struct {
	// Code is one of the Code* constants.
	Code string
	// Status is the HTTP status code of the error response.
	Status int
	// Msg is the human-readable message, phrased like the one STS returns.
	Msg string
}

// Error implements error.
func (e *Error) Error() string {
	return "sigv4: " + e.Code + " (" + strconv.Itoa(e.Status) + "): " + e.Msg
}

// ErrNotSigned is returned by Parse for a request with neither an
// Authorization header nor presigned query parameters. Anonymous calls such as
// AssumeRoleWithWebIdentity are legal, so the caller decides; for actions that
// need a signature it can answer with this error as is: it is an *Error with
// code MissingAuthenticationToken and status 403, as STS sends.
var ErrNotSigned error = &Error{
	Code:   CodeMissingAuthenticationToken,
	Status: http.StatusForbidden,
	Msg:    "Request is missing Authentication Token",
}

func incomplete(msg string) *Error {
	return &Error{Code: CodeIncompleteSignature, Status: http.StatusBadRequest, Msg: msg}
}

func mismatch(msg string) *Error {
	return &Error{Code: CodeSignatureDoesNotMatch, Status: http.StatusForbidden, Msg: msg}
}

func invalidValue(msg string) *Error {
	return &Error{Code: CodeInvalidParameterValue, Status: http.StatusBadRequest, Msg: msg}
}

// quoteShort quotes attacker-controlled text for an error message, cut short
// so a huge header cannot make a huge response.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
