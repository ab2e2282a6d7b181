// Package imds serves the credential endpoints that AWS SDKs read through
// their default chain: EC2 instance metadata (IMDSv1/v2) and the ECS
// container-credential endpoint. It identifies the caller (bearer token,
// source address, local uid), asks the agent, and writes response bodies
// rendered once per session. The wire contract follows
// shared/reference/aws-contracts.md sections A and B.
package imds

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/audit"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/internal/clock"
)

// Agent is what the server needs of the agent: the one trust decision of a
// request, and the credentials for the identity it returned. Everything
// else a handler needs comes with the Identity, from the same snapshot.
type Agent interface {
	Resolve(c *agent.Caller) (agent.Identity, error)
	CredentialsFor(ctx context.Context, id agent.Identity, c *agent.Caller, role string) (*agent.Credentials, error)
}

// Metrics receives one observation per request. Endpoint is asked once
// per endpoint label, when the routes are built: the recorder it returns
// is all a request calls, so no label is looked up per request.
type Metrics interface {
	Endpoint(name string) func(code int, d time.Duration)
}

type nopMetrics struct{}

func (nopMetrics) Endpoint(string) func(int, time.Duration) { return func(int, time.Duration) {} }

// UIDLookup returns the uid owning the client socket of a TCP connection
// from this host, identified by both of its endpoints.
type UIDLookup func(local, remote netip.AddrPort) (uint32, error)

// Options are the server's dependencies.
type Options struct {
	Agent  Agent
	Logger *zap.Logger
	Clock  clock.Clock
	// Metrics defaults to none.
	Metrics Metrics
	// TokenKey signs IMDSv2 tokens; random when nil (tokens then do not
	// survive a restart, which SDKs handle by asking for a new one).
	TokenKey []byte
	// UIDLookup is nil where uid lookups are impossible: uid conditions
	// then fail closed.
	UIDLookup UIDLookup
	// Socket, when set, replaces UIDLookup: one sock_diag lookup gives the
	// uid and the socket's inode, from which Process finds its process.
	Socket SocketLookup
	// Process attests host processes; nil turns process conditions off
	// (they fail closed).
	Process ProcessAttestor
	// Containers resolves container addresses; nil turns container
	// conditions off (they fail closed).
	Containers ContainerResolver
	// ListenAddrs are the listener addresses, accepted as Host headers.
	ListenAddrs []string
	// Audit receives one record per credential vend or refusal; nil turns
	// it off.
	Audit Auditor
	// Config is the config the server starts with (required); Apply
	// takes later ones.
	Config *config.Config
	// JWT verifies bearer JWTs for clients that match on jwt; nil: no
	// token is verified as a JWT (such clients never match).
	JWT JWTVerifier
}

// Auditor records credential vends and refusals (the audit package's Log).
type Auditor interface {
	Write(audit.Record)
}

// Server is the HTTP front end of the credential listeners.
type Server struct {
	agent Agent
	log   *zap.Logger
	clk   clock.Clock
	// realClock: clk is the wall clock, so the time a request started
	// is the clock's time for that request too (Server.now).
	realClock bool
	metrics   Metrics
	// other records the requests no route answers (404, 405).
	other      func(code int, d time.Duration)
	tokens     *tokenSigner
	uid        UIDLookup
	sock       SocketLookup
	proc       ProcessAttestor
	containers ContainerResolver
	listen     []string
	hosts      atomic.Pointer[map[string]bool]
	limits     atomic.Pointer[limiterSet]
	router     *mux.Router
	uidWarn    sync.Once
	auditor    Auditor
	jwt        JWTVerifier
	views      *jwtViews
}

// New builds the server and its router.
func New(opts Options) (*Server, error) {
	if opts.Agent == nil {
		return nil, errors.New("imds: an Agent is required")
	}
	if opts.Config == nil {
		return nil, errors.New("imds: a Config is required")
	}
	s := &Server{agent: opts.Agent, log: opts.Logger, clk: opts.Clock, metrics: opts.Metrics, uid: opts.UIDLookup, listen: opts.ListenAddrs, auditor: opts.Audit, jwt: opts.JWT, views: newJWTViews(),
		sock: opts.Socket, proc: opts.Process, containers: opts.Containers}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.clk == nil {
		s.clk = clock.Real{}
	}
	_, s.realClock = s.clk.(clock.Real)
	if s.metrics == nil {
		s.metrics = nopMetrics{}
	}
	key := opts.TokenKey
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("imds: token key: %w", err)
		}
	}
	s.tokens = &tokenSigner{key: key}
	s.other = s.metrics.Endpoint(epOther)
	s.Apply(opts.Config)
	s.router = s.routes()
	return s, nil
}

// Apply takes the parts of a new config the server itself uses (the Host
// allowlist, the rate limits); handlers read the rest from the snapshot
// each request's Identity carries.
func (s *Server) Apply(cfg *config.Config) {
	h := map[string]bool{"localhost": true}
	for _, w := range wellKnownHosts {
		h[w] = true
	}
	for _, l := range s.listen {
		if host, _, err := net.SplitHostPort(l); err == nil {
			h[strings.ToLower(host)] = true
		}
	}
	for _, a := range cfg.AllowedHosts {
		h[strings.ToLower(strings.Trim(a, "[]"))] = true
	}
	s.hosts.Store(&h)
	if cur := s.limits.Load(); cur == nil || cur.rps != rateOf(cfg) || cur.burst != max(cfg.Limits.Burst, 1) {
		s.limits.Store(newLimiterSet(cfg.Limits))
	}
}

func rateOf(cfg *config.Config) rate.Limit { return rate.Limit(cfg.Limits.PerClientRPS) }

// wellKnownHosts are the metadata addresses SDKs use by default.
var wellKnownHosts = []string{"169.254.169.254", "169.254.170.2", "169.254.170.23", "fd00:ec2::254", "fd00:ec2::23", "127.0.0.1", "::1"}

// Handler is the root handler of the credential listeners.
func (s *Server) Handler() http.Handler { return s }

// connInfo is per-connection state: both endpoints and the cached uid.
type connInfo struct {
	conn          net.Conn
	local, remote netip.AddrPort
	mu            sync.Mutex // serializes the uid lookup
	uid           uint32
	uidErr        error
	inode         uint64      // the client socket's, when Socket looked it up
	looked        atomic.Bool // the lookup ran (uid/uidErr are set)
	lookup        func() (uint32, error)
	// caller is the agent's view of this connection's token-less caller
	// (immutable once ConnContext returns).
	caller agent.Caller
	// trusted: a request on the connection matched a client (markTrusted).
	trusted atomic.Bool
	// token memoizes the last IMDSv2 token verified on this connection:
	// keep-alive clients resend the same one, so the HMAC is computed once.
	token atomic.Pointer[verifiedToken]
	// jwt memoizes the last bearer JWT verified on this connection (jwt.go).
	jwt atomic.Pointer[connJWT]
	// bearer memoizes the digest of the last bearer token (digestOf).
	bearer atomic.Pointer[bearerDigest]

	// grown: the connection's goroutine has grown its stack (growStack).
	// Read and written only by that goroutine: HTTP/1 serves one
	// connection's requests in turn, on the goroutine that reads them.
	grown bool

	// The process and container behind the connection (workload.go).
	procOnce, ctrOnce sync.Once
	proc              *agent.Process
	procErr           error
	ctr               *agent.Container
	ctrErr            error
}

// markTrusted tells the connection limiter, once per connection, that the
// connection carried a request served to client: it is closed to make room
// only after every untrusted one (within the client's share).
func markTrusted(ci *connInfo, client string) {
	if ci == nil || ci.trusted.Load() {
		return
	}
	ci.trusted.Store(true)
	if m, ok := ci.conn.(interface{ MarkTrusted(string) }); ok {
		m.MarkTrusted(client)
	}
}

type verifiedToken struct {
	token, client string
	exp           int64
}

type connKey struct{}

// ConnContext is http.Server.ConnContext: it records the connection's
// endpoints so the caller's uid can be looked up once per connection.
func (s *Server) ConnContext(ctx context.Context, c net.Conn) context.Context {
	ci := &connInfo{conn: c}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ci.remote = a.AddrPort()
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		ci.local = a.AddrPort()
	}
	ci.lookup = func() (uint32, error) {
		if ci.looked.Load() {
			return ci.uid, ci.uidErr
		}
		ci.mu.Lock()
		defer ci.mu.Unlock()
		if ci.looked.Load() {
			return ci.uid, ci.uidErr
		}
		var uid uint32
		var inode uint64
		var err error
		switch {
		case s.sock != nil:
			var o SocketOwner
			o, err = s.sock(ci.local, ci.remote)
			uid, inode = o.UID, o.Inode
		case s.uid == nil:
			err = errors.New("uid lookup is not available on this system")
		default:
			uid, err = s.uid(ci.local, ci.remote)
		}
		ci.inode = inode
		if err != nil {
			s.uidWarn.Do(func() {
				s.log.Warn("uid lookup failed: clients matched by uids will not match (fail closed)", zap.Error(err))
			})
			if errors.Is(err, ErrUIDBusy) {
				// Not an answer about this socket: the next request on the
				// connection asks again rather than failing for good.
				return 0, err
			}
		}
		ci.uid, ci.uidErr = uid, err
		ci.looked.Store(true)
		return uid, err
	}
	ci.caller = agent.Caller{Addr: ci.remote.Addr().Unmap(), UID: ci.lookup}
	s.workloadGetters(ci)
	return context.WithValue(ctx, connKey{}, ci)
}

// peekUID returns the connection's uid if it was already looked up, -1
// otherwise: the audit log never triggers a lookup of its own.
func (ci *connInfo) peekUID() int64 {
	if ci.looked.Load() && ci.uidErr == nil {
		return int64(ci.uid)
	}
	return -1
}

// connOf is the request's connection state (nil outside a server built
// with ConnContext, e.g. a recorder in tests). The adapter looks it up once
// per request and hands it on.
func connOf(r *http.Request) *connInfo {
	ci, _ := r.Context().Value(connKey{}).(*connInfo)
	return ci
}

// caller builds the agent's view of who is asking on connection ci.
func (s *Server) caller(r *http.Request, ci *connInfo, withToken bool) *agent.Caller {
	ok := ci != nil
	var tok []string
	if withToken {
		tok = r.Header["Authorization"]
	}
	if ok && len(tok) == 0 {
		// Token-less callers are the connection's: no allocation per request.
		return &ci.caller
	}
	if len(tok) > 0 && s.jwt != nil {
		if c := s.jwtCaller(ci, tok[0]); c != nil {
			return c
		}
	}
	// With a JWT verifier, the caller and its JWT getter's state in one
	// allocation.
	var bc *bearerCall
	var c *agent.Caller
	if len(tok) > 0 && s.jwt != nil {
		bc = &bearerCall{}
		c = &bc.c
	} else {
		c = &agent.Caller{}
	}
	if ok {
		c.Addr, c.UID = ci.caller.Addr, ci.caller.UID
		c.Process, c.Container = ci.caller.Process, ci.caller.Container
	} else if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		c.Addr = ap.Addr().Unmap()
	}
	if len(tok) > 0 {
		c.Token, c.HasToken = tok[0], true
		if ok {
			c.TokenDigest = ci.digestOf(tok[0])
		}
		if bc != nil {
			bc.jc = jwtCall{s: s, ctx: r.Context(), ci: ci, c: c, token: tok[0]}
			c.JWT = bc.jc.verify
		}
	}
	return c
}

// bearerCall is a request's caller that presented a bearer token the
// connection has no caller memoized for, with the state of its JWT getter.
type bearerCall struct {
	c  agent.Caller
	jc jwtCall
}

// bearerDigest is the SHA-256 of the last bearer token seen on a
// connection (immutable once stored).
type bearerDigest struct {
	token  string
	digest [32]byte
}

// digestOf is the SHA-256 of token, which the agent looks static token
// clients up by: computed once per token and connection, as ECS SDKs send
// the same Authorization header on every request of a keep-alive
// connection (hashing a kilobyte-long token, and the copy Sum256 needed,
// cost each request ~1 µs here).
func (ci *connInfo) digestOf(token string) *[32]byte {
	if m := ci.bearer.Load(); m != nil && sameToken(m.token, token) {
		return &m.digest
	}
	m := &bearerDigest{token: token, digest: sha256.Sum256([]byte(token))}
	ci.bearer.Store(m)
	return &m.digest
}

// hostAllowed is the DNS-rebinding defence: a page that rebinds a name to
// the sidecar sends that name as Host, which is not on the list.
func (s *Server) hostAllowed(r *http.Request) bool {
	host := r.Host
	// Strip the port by hand: net.SplitHostPort allocates an error for
	// the common port-less Host (169.254.169.254).
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, ':') == i {
		host = host[:i]
	}
	hosts := *s.hosts.Load()
	if hosts[host] {
		return true
	}
	return hosts[strings.ToLower(host)]
}
