// Package agent decides which caller gets which role, and hands out role
// credentials from a bounded LRU cache that it keeps fresh: concurrent misses
// share one source call, sessions are renewed in the background well before
// SDKs would consider them stale, and STS outages shorter than the cached
// credentials' remaining life are invisible to callers. It knows nothing of
// HTTP or of any AWS SDK: front ends hand it a Caller, sources implement Source.
package agent

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/credsidecar/credsidecar/sts/stsrules"
)

// Caller is what a front end knows about who is asking.
type Caller struct {
	// Token is the bearer token the caller presented; HasToken tells an
	// empty token from none.
	Token    string
	HasToken bool
	// TokenDigest, when not nil, is the SHA-256 of Token, computed once by
	// a front end that sees the token again (a keep-alive connection's
	// memo), so that the trust decision does not hash a kilobyte-long JWT
	// on every request.
	TokenDigest *[32]byte
	// Addr is the caller's IP address.
	Addr netip.Addr
	// UID looks up the uid owning the caller's socket; nil where unknown.
	// It is called only when a client's match has uids.
	UID func() (uint32, error)
	// Process returns the host process owning the caller's socket (attest/proc);
	// nil where unknown. It is called only when a client's match has
	// systemd_unit, systemd_user_unit, cgroup, exe or exe_sha256, or a
	// template reads .Unit, .Cgroup or .Exe.
	Process func() (*Process, error)
	// Container returns the Docker container the caller's address belongs
	// to (attest/docker); nil where unknown. It is called only when a
	// client's match has container, or a template reads .Container.
	Container func() (*Container, error)
	// JWT verifies the bearer token as a JWT (at most once per token, the
	// front end caches it); nil where the front end verifies none. It is
	// called only when a client's match has jwt and no client holds the
	// token itself.
	JWT func() (*JWT, error)
}

// Credentials are one session's temporary credentials. They are immutable
// once the agent hands them out, apart from the render memo that front
// ends use to build each response body once per session. (Before caching
// them the agent may render a body and point AccessKeyID, SecretAccessKey
// and SessionToken into it: same values, one copy. A Source must hand out
// a fresh value per call.)
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// Expiration is when STS stops accepting them.
	Expiration time.Time
	// Issued is when they were obtained (IMDS's LastUpdated).
	Issued time.Time
	// RoleARN is the role the session belongs to.
	RoleARN string
	// AccountID is the role's account.
	AccountID string
	// AssumedRoleARN is arn:aws:sts::ACCT:assumed-role/ROLE/SESSION.
	AssumedRoleARN string

	render [RenderSlots]atomic.Pointer[[]byte]
	// owner is the cache entry these credentials were installed in (nil
	// until then): where a first render is remembered (render.go).
	owner atomic.Pointer[entry]
}

// RenderSlots is how many distinct response formats a session can memoize.
const RenderSlots = 4

// Rendered returns the bytes render produced for this session in slot,
// calling render at most a few times per session (racing first callers may
// each render; all results are equal). The agent never interprets them,
// but remembers render: the session's renewals, and new sessions of its
// role, are rendered into the same slot before they are cached, with
// their key, secret and token kept as substrings of the body (render.go).
func (c *Credentials) Rendered(slot int, render func(*Credentials) []byte) []byte {
	if b := c.render[slot].Load(); b != nil {
		return *b
	}
	return c.renderSlow(slot, render)
}

// KeyIDSuffix is the last four characters of the access key id: enough to
// correlate logs, not enough to use (stsrules.KeyIDSuffix).
func (c *Credentials) KeyIDSuffix() string { return stsrules.KeyIDSuffix(c.AccessKeyID) }

// AccountOf returns the account id of an ARN ("" if it has none).
func AccountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 {
		return parts[4]
	}
	return ""
}

// Tag is a session tag.
type Tag = stsrules.Tag

// Request is one logical call to a source: everything that makes a session
// distinct.
type Request struct {
	RoleARN           string
	SessionName       string
	Duration          time.Duration
	ExternalID        string
	SourceIdentity    string
	SessionPolicy     string
	PolicyARNs        []string
	Tags              []Tag
	TransitiveTagKeys []string
	// WebIdentityTokenFile selects AssumeRoleWithWebIdentity; the source
	// re-reads the file on every call.
	WebIdentityTokenFile string
	// Via holds the credentials of the previous hop for role chaining; nil
	// means the sidecar's own identity.
	Via *Credentials
}

// Operation names the STS operation the request maps to.
func (r *Request) Operation() string {
	if r.WebIdentityTokenFile != "" {
		return "AssumeRoleWithWebIdentity"
	}
	return "AssumeRole"
}

// Source obtains credentials for a request: real STS or the local emulator.
type Source interface {
	Retrieve(ctx context.Context, req Request) (*Credentials, error)
}

// SourceError is what sources return for a failed call, so the agent can
// decide whether to retry and front ends what to tell the caller.
type SourceError struct {
	// Code is STS's error code, e.g. AccessDenied or Throttling.
	Code string
	// Message is STS's message; it must not contain secrets.
	Message string
	// Retryable is true for throttling, 5xx and timeouts.
	Retryable bool
	Err       error
}

func (e *SourceError) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Code + ": " + e.Message
}

func (e *SourceError) Unwrap() error { return e.Err }

// Kind classifies an agent error for the front end's status mapping.
type Kind int

// Error kinds.
const (
	// KindNoClient: the caller matches no client (403).
	KindNoClient Kind = iota + 1
	// KindBadToken: a token was presented that matches no client (401).
	KindBadToken
	// KindRoleNotAllowed: unknown role, or one the client may not have (404).
	KindRoleNotAllowed
	// KindSourceRejected: STS refused for good (access denied, validation) (502).
	KindSourceRejected
	// KindUnavailable: STS failed transiently and nothing valid is cached (503).
	KindUnavailable
)

// Error is the agent's error for callers; Msg is safe to show to the
// caller it was produced for.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string { return e.Msg }

func (e *Error) Unwrap() error { return e.Err }

func errorf(k Kind, err error, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...), Err: err}
}
