package imds

import (
	"context"
	"crypto/sha256"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/jwtauth"
)

// JWTVerifier verifies bearer JWTs (jwtauth.Authenticator). source, asked
// only for an uncached token, keys the budget of verifications. Valid
// tells whether a lease still stands, so that a connection resending the
// token it presented before skips the verifier's cache lookup.
type JWTVerifier interface {
	VerifyLease(ctx context.Context, token string, source func() string) (jwtauth.Lease, error)
	Valid(l *jwtauth.Lease) bool
}

var _ JWTVerifier = (*jwtauth.Authenticator)(nil)

// maxJWTViews bounds the agent views of verified tokens kept (each holds
// the agent's session memo for its token).
const maxJWTViews = 10000

// jwtViews maps a verified token's identity (shared while jwtauth caches
// it) to the agent's view of it, so the agent's per-token session memo
// survives across requests and connections.
type jwtViews struct {
	c *lru.Cache[*jwtauth.Identity, *agent.JWT]
}

func newJWTViews() *jwtViews {
	c, _ := lru.New[*jwtauth.Identity, *agent.JWT](maxJWTViews)
	return &jwtViews{c: c}
}

func (v *jwtViews) of(id *jwtauth.Identity) *agent.JWT {
	if j, ok := v.c.Get(id); ok {
		return j
	}
	j := &agent.JWT{Provider: id.Provider, Subject: id.Subject, Claims: id.All}
	v.c.Add(id, j)
	return j
}

// connJWT is the last bearer JWT verified on a connection: ECS SDKs send
// the same Authorization token on every request of a keep-alive
// connection (re-reading the token file only when it changes), so while
// the lease stands the next request presenting it gets caller, with no
// digest, cache lookup or allocation. It is immutable once stored.
type connJWT struct {
	lease  jwtauth.Lease
	j      *agent.JWT
	digest [32]byte     // the token's SHA-256 (the agent's static token lookup)
	caller agent.Caller // Token is the token; JWT returns j; TokenDigest is &digest
}

func (m *connJWT) jwt() (*agent.JWT, error) { return m.j, nil }

// jwtCaller returns the connection's memoized caller when token is the
// JWT last verified on ci and its lease still stands; nil otherwise.
func (s *Server) jwtCaller(ci *connInfo, token string) *agent.Caller {
	if ci == nil {
		return nil
	}
	m := ci.jwt.Load()
	if m == nil || !sameToken(m.caller.Token, token) || !s.jwt.Valid(&m.lease) {
		return nil
	}
	return &m.caller
}

// sameToken compares two bearer tokens in a time that depends only on
// their lengths (a connection may carry several callers' requests through
// a proxy, so the memo must not tell how much of a guess was right). It
// reads eight bytes a step: a JWT is about a kilobyte.
func sameToken(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v uint64
	i := 0
	for ; i+8 <= len(a); i += 8 {
		v |= le64(a[i:i+8]) ^ le64(b[i:i+8])
	}
	for ; i < len(a); i++ {
		v |= uint64(a[i] ^ b[i])
	}
	return v == 0
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// jwtCall verifies one request's bearer token as a JWT on first use (the
// agent asks only when some client matches on jwt), at most once per
// request, and memoizes a success on the connection.
type jwtCall struct {
	s     *Server
	ctx   context.Context
	ci    *connInfo // nil outside a server built with ConnContext
	c     *agent.Caller
	token string
	done  bool
	j     *agent.JWT
	err   error
}

// source is whose budget of new-token verifications this request spends:
// the socket owner's uid when it is known (on loopback every address is
// one network, shared by every local user), else the source network. It
// is asked only for a token not verified before, so the uid lookup is
// not paid per request.
func (jc *jwtCall) source() string { return unidentifiedKey(jc.c) }

func (jc *jwtCall) verify() (*agent.JWT, error) {
	if jc.done {
		return jc.j, jc.err
	}
	jc.done = true
	s := jc.s
	l, err := s.jwt.VerifyLease(jc.ctx, jc.token, jc.source)
	if err != nil {
		jc.err = err
		if ce := s.log.Check(zap.DebugLevel, "bearer JWT refused"); ce != nil {
			// The reason, never the token (its short digest correlates).
			ce.Write(zap.String("token_id", jwtauth.TokenID(jc.token)), zap.Stringer("addr", jc.c.Addr), zap.Error(err))
		}
		return nil, err
	}
	jc.j = s.views.of(l.ID)
	if jc.ci != nil {
		m := &connJWT{lease: l, j: jc.j, caller: *jc.c}
		if d := jc.c.TokenDigest; d != nil {
			m.digest = *d // the connection's digestOf: already hashed
		} else {
			m.digest = sha256.Sum256([]byte(jc.token))
		}
		m.caller.JWT, m.caller.TokenDigest = m.jwt, &m.digest
		jc.ci.jwt.Store(m)
	}
	return jc.j, nil
}
