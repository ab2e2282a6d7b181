package imds

import (
	"context"
	"net/http"

	lru "github.com/hashicorp/golang-lru/v2"
	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/jwtauth"
)

// JWTVerifier verifies bearer JWTs (jwtauth.Authenticator). source, asked
// only for an uncached token, keys the budget of verifications.
type JWTVerifier interface {
	Verify(ctx context.Context, token string, source func() string) (*jwtauth.Identity, error)
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

// jwtGetter is the Caller.JWT of a request presenting token: verified on
// first use (the agent asks only when some client matches on jwt), at
// most once per request.
func (s *Server) jwtGetter(r *http.Request, c *agent.Caller, token string) func() (*agent.JWT, error) {
	var j *agent.JWT
	var err error
	done := false
	return func() (*agent.JWT, error) {
		if !done {
			done = true
			var id *jwtauth.Identity
			if id, err = s.jwt.Verify(r.Context(), token, func() string { return networkKey(c.Addr) }); err == nil {
				j = s.views.of(id)
			} else if ce := s.log.Check(zap.DebugLevel, "bearer JWT refused"); ce != nil {
				// The reason, never the token (its short digest correlates).
				ce.Write(zap.String("token_id", jwtauth.TokenID(token)), zap.Stringer("addr", c.Addr), zap.Error(err))
			}
		}
		return j, err
	}
}
