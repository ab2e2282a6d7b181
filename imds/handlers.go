package imds

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"go.uber.org/zap"

	"github.com/credsidecar/credsidecar/agent"
	"github.com/credsidecar/credsidecar/config"
	"github.com/credsidecar/credsidecar/jwtauth"
)

// Paths of the EC2 and ECS contracts.
const (
	tokenPath     = "/latest/api/token"
	credsPath     = "/latest/meta-data/iam/security-credentials"
	credsExtPath  = "/latest/meta-data/iam/security-credentials-extended"
	iamInfoPath   = "/latest/meta-data/iam/info"
	regionPath    = "/latest/meta-data/placement/region"
	azPath        = "/latest/meta-data/placement/availability-zone"
	instanceIDPat = "/latest/meta-data/instance-id"
	identityPath  = "/latest/dynamic/instance-identity/document"
	ecsRolePath   = "/role/{role}"
	ecsCredsPath  = "/creds"

	tokenHeader    = "X-Aws-Ec2-Metadata-Token"
	tokenTTLHeader = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	maxTokenTTL    = 21600
)

// Render slots of agent.Credentials: one per response format.
const (
	slotIMDS = iota
	slotIMDSExtended
	slotECS
)

// Metric endpoint labels (bounded).
const (
	epToken     = "imds_token"
	epIMDSCreds = "imds_credentials"
	epRoleList  = "imds_role_list"
	epMetadata  = "imds_metadata"
	epECS       = "ecs"
	epOther     = "other"
)

// route is one path of the contract: a path whose only variable is a
// trailing {role} segment, the method it answers, and the endpoint. Every
// path is answered with and without a trailing slash, as EC2 does.
type route struct {
	path, method string
	ep           endpoint
}

// routeTable lists the routes hottest first: the router tries them in
// order, so a path pays for every route listed before its own. The
// keep-alive paths (a role's credentials, IMDS and ECS) come first, then the
// other two requests of botocore's cold sequence (the token PUT and the role
// list).
func (s *Server) routeTable() []route {
	var out []route
	recorders := map[string]func(int, time.Duration){}
	add := func(path, method string, ep endpoint) {
		if recorders[ep.name] == nil {
			recorders[ep.name] = s.metrics.Endpoint(ep.name)
		}
		ep.record = recorders[ep.name]
		path = strings.TrimSuffix(path, "/")
		if prefix, ok := strings.CutSuffix(path, "{role}"); ok {
			ep.rolePrefix = prefix
		}
		out = append(out, route{path: path, method: method, ep: ep})
	}
	imdsGet := func(name string, flags epFlags, h handler) endpoint {
		return endpoint{name: name, flags: flags | imdsToken, ctype: textType, handle: h}
	}
	add(credsPath+"/{role}", http.MethodGet, imdsGet(epIMDSCreds, needsClient|audited, s.imdsCreds(slotIMDS)))
	add(ecsRolePath, http.MethodGet, endpoint{name: epECS, flags: needsClient | audited | bearer, ctype: jsonType, handle: s.ecsCreds})
	add(tokenPath, http.MethodPut, endpoint{name: epToken, ctype: textType, handle: s.putToken})
	add(credsPath+"/", http.MethodGet, imdsGet(epRoleList, needsClient, roleList))
	add(ecsCredsPath, http.MethodGet, endpoint{name: epECS, flags: needsClient | audited | bearer, ctype: jsonType, handle: s.ecsCreds})
	add(credsExtPath+"/{role}", http.MethodGet, imdsGet(epIMDSCreds, needsClient|audited, s.imdsCreds(slotIMDSExtended)))
	add(credsExtPath+"/", http.MethodGet, imdsGet(epRoleList, needsClient, roleList))
	add(iamInfoPath, http.MethodGet, imdsGet(epMetadata, needsClient, s.iamInfo))
	// Region, AZ and instance id go to any caller: SDKs read the region
	// before they have credentials.
	add(regionPath, http.MethodGet, imdsGet(epMetadata, 0, metadata(func(c *config.Config) string { return c.Region })))
	add(azPath, http.MethodGet, imdsGet(epMetadata, 0, metadata(func(c *config.Config) string { return c.Region + "a" })))
	add(instanceIDPat, http.MethodGet, imdsGet(epMetadata, 0, metadata(instanceID)))
	// The identity document names the account: trusted callers only.
	add(identityPath, http.MethodGet, imdsGet(epMetadata, needsClient, s.identityDocument))
	return out
}

// routes registers routeTable on a gorilla/mux router, one route per
// table entry, matched by a MatcherFunc that compares the path as a string
// (pathMatcher) rather than by a path template: a template is a regexp run
// twice per request (to match, then to extract its variables), and the
// handlers read the {role} segment from the path themselves (roleOf).
// Requests reach the router through Server.ServeHTTP, which calls Match
// rather than the router's ServeHTTP. No route may carry a template (path,
// host or query): every match is handed the shared empty noVars, which a
// template's variables would be written into; routes panics on one.
func (s *Server) routes() *mux.Router {
	// SkipClean: the router's ServeHTTP would answer a path that is not
	// clean ("//", "/./", "/../") with a bare 301 redirect. Server.ServeHTTP
	// does not call it; this keeps the router answering such paths (no
	// path of the contract) with the JSON 404 should it ever serve alone.
	r := mux.NewRouter().SkipClean(true)
	for _, rt := range s.routeTable() {
		r.NewRoute().MatcherFunc(pathMatcher(rt)).Methods(rt.method).HandlerFunc(s.adapt(rt.ep))
	}
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if _, err := route.GetPathTemplate(); err == nil {
			return errors.New("a path template")
		}
		if _, err := route.GetHostTemplate(); err == nil {
			return errors.New("a host template")
		}
		if q, err := route.GetQueriesTemplates(); err == nil && len(q) > 0 {
			return errors.New("a query template")
		}
		return nil
	})
	if err != nil {
		panic("imds: a route has " + err.Error() + ": its variables would be written into the shared noVars")
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fail(w, s.other, time.Time{}, errNotFound)
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.fail(w, s.other, time.Time{}, errMethod)
	})
	return r
}

// pathMatcher matches rt's path with or without one trailing slash, as the
// templates path and path+"/" did. A path ending in {role} matches its
// prefix followed by one non-empty segment without a slash (the template
// variable's default pattern, [^/]+), again with or without a trailing
// slash.
func pathMatcher(rt route) mux.MatcherFunc {
	if prefix := rt.ep.rolePrefix; prefix != "" {
		return func(r *http.Request, _ *mux.RouteMatch) bool {
			role, ok := strings.CutPrefix(r.URL.Path, prefix)
			role = strings.TrimSuffix(role, "/")
			return ok && role != "" && strings.IndexByte(role, '/') < 0
		}
	}
	path := rt.path
	return func(r *http.Request, _ *mux.RouteMatch) bool {
		p := r.URL.Path
		return p == path || len(p) == len(path)+1 && p[len(path)] == '/' && p[:len(path)] == path
	}
}

// noVars is every match's Vars: mux's Route.Match allocates a map for a
// match whose Vars is nil, and no route here has variables to write (routes
// refuses templates), so the one empty map is only ever read.
var noVars = map[string]string{}

// matches recycles the RouteMatch a request is matched into: it escapes
// through the router's matcher interfaces, so it would be allocated per
// request.
var matches = sync.Pool{New: func() any { return new(mux.RouteMatch) }}

// ServeHTTP is the root handler of the credential listeners. It asks the
// router which route answers and calls that route's handler, rather than
// serving through the router's ServeHTTP: that one stores the matched route
// and its vars in the request's context, for mux.CurrentRoute and mux.Vars,
// which no handler here calls, at two context values and two request copies
// per request (issue 16 measured gorilla/mux at 1.06 µs and 8 allocations of
// a cached request's 1.40 µs; the template regexps were the rest).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := matches.Get().(*mux.RouteMatch)
	*m = mux.RouteMatch{Vars: noVars}
	var h http.Handler
	if s.router.Match(r, m) {
		h = m.Handler
	}
	*m = mux.RouteMatch{}
	matches.Put(m)
	if h == nil {
		// Not reached: the router has a NotFoundHandler and a
		// MethodNotAllowedHandler, so every request matches one.
		s.fail(w, s.other, time.Time{}, errNotFound)
		return
	}
	h.ServeHTTP(w, r)
}

// roleOf is the {role} segment of a path the router matched against
// prefix+"{role}" or prefix+"{role}/": read from the path itself rather
// than from mux.Vars, which costs a context and a map lookup per request.
func roleOf(path, prefix string) string {
	return strings.TrimSuffix(strings.TrimPrefix(path, prefix), "/")
}

// epFlags say which of the adapter's steps an endpoint takes.
type epFlags uint8

const (
	// bearer: the caller's token is the ECS Authorization header.
	bearer epFlags = 1 << iota
	// imdsToken: the IMDSv2 token policy applies (imds.tokens, binding).
	imdsToken
	// needsClient: a caller matching no client is refused (403/401).
	needsClient
	// audited: each answer, vend or refusal, is an audit record.
	audited
)

// endpoint is one credential endpoint as the adapter runs it.
type endpoint struct {
	name string // metric label
	// record is the endpoint's metrics recorder (Metrics.Endpoint of
	// name), resolved when the routes are built.
	record func(code int, d time.Duration)
	flags  epFlags
	ctype  []string // Content-Type of a success
	handle handler
	// rolePrefix is the path before the {role} segment ("" when the path
	// names no role: the caller's default role).
	rolePrefix string
}

// call is one request after the adapter's checks: who is asking, identified
// once, against one config snapshot. It is passed by value: no allocation
// per request.
type call struct {
	r *http.Request
	// ci is the connection's state, looked up once (nil in recorder tests).
	ci *connInfo
	c  *agent.Caller
	id agent.Identity
	// role is the role named in the path ("" = the default role).
	role string
}

// handler answers one request the adapter let through: the success body
// and the credentials it vended (for the audit record), or an error the
// adapter maps (an *agent.Error or an *apiError).
type handler func(w http.ResponseWriter, q call) ([]byte, *agent.Credentials, error)

// apiError is an answer decided by the front end itself.
type apiError struct {
	status     int
	code, msg  string
	retryAfter int // seconds; 429 only
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// Errors of the front end, allocated once.
var (
	errNotFound       = &apiError{status: http.StatusNotFound, code: "NotFound", msg: "no such path"}
	errMethod         = &apiError{status: http.StatusMethodNotAllowed, code: "MethodNotAllowed", msg: "method not allowed on this path"}
	errHost           = &apiError{status: http.StatusForbidden, code: "Forbidden", msg: "the Host header is not an address of this sidecar"}
	errV2Needed       = &apiError{status: http.StatusUnauthorized, code: "Unauthorized", msg: "IMDSv2 is required: PUT /latest/api/token first and send X-aws-ec2-metadata-token"}
	errBadIMDSv2      = &apiError{status: http.StatusUnauthorized, code: "Unauthorized", msg: "the metadata token is invalid, expired, or was issued to another caller"}
	errProxied        = &apiError{status: http.StatusForbidden, code: "Forbidden", msg: "token requests through a proxy (X-Forwarded-For) are refused"}
	errTTL            = &apiError{status: http.StatusBadRequest, code: "BadRequest", msg: "X-aws-ec2-metadata-token-ttl-seconds must be an integer from 1 to 21600"}
	errHopLimit       = &apiError{status: http.StatusInternalServerError, code: "InternalError", msg: "the token response hop limit could not be applied"}
	errNoRole         = &apiError{status: http.StatusNotFound, code: "NotFound", msg: "no such role for this caller"}
	errJWTBusy        = &apiError{status: http.StatusTooManyRequests, code: "TooManyRequests", msg: "too many new tokens from this source; retry later", retryAfter: 1}
	errJWTUnavailable = &apiError{status: http.StatusServiceUnavailable, code: "Unavailable", msg: "the token's identity provider cannot be reached; retry later"}
)

// adapt is the one adapter every credential endpoint runs through, in the
// spirit of kiam's Handle(ctx, w, r) (int, error): it checks the Host,
// builds the caller, makes the request's one trust decision, applies the
// rate limit keyed on that decision and the IMDSv2 token policy, then maps
// the handler's error and records the metric and the audit record, each in
// this one place.
func (s *Server) adapt(ep endpoint) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		q := call{r: r, ci: connOf(r)}
		if q.ci != nil && !q.ci.grown {
			q.ci.grown = true
			growStack(0)
		}
		if ep.rolePrefix != "" {
			q.role = roleOf(r.URL.Path, ep.rolePrefix)
		}
		if !s.hostAllowed(r) {
			s.refuse(w, ep, start, q, agent.Identity{}, errHost)
			return
		}
		q.c = s.caller(r, q.ci, ep.flags&bearer != 0)
		id, idErr := s.agent.Resolve(q.c)
		q.id = id
		if err := s.limit(q.c, id); err != nil {
			s.refuse(w, ep, start, q, id, err)
			return
		}
		if ep.flags&imdsToken != 0 {
			if err := s.tokenPolicy(r, q.ci, q.c, id, start); err != nil {
				s.refuse(w, ep, start, q, id, err)
				return
			}
		}
		var body []byte
		var creds *agent.Credentials
		err := idErr
		if err == nil || ep.flags&needsClient == 0 {
			body, creds, err = ep.handle(w, q)
		}
		status := http.StatusOK
		if err != nil {
			status = s.fail(w, ep.record, start, err)
		} else {
			s.write(w, ep.record, start, ep.ctype, body)
			if ep.flags&needsClient != 0 {
				// Only a request actually served to a client makes its
				// connection one the limiter keeps (a refused or public
				// request changes no state).
				markTrusted(q.ci, id.Client())
			}
		}
		if ep.flags&audited != 0 {
			s.audit(q, ep.name, id, creds, status, err)
		}
	}
}

// stackReserve is the stack growStack makes room for: more than a cached
// request uses below the adapter (the trust decision, the agent, the
// render; a profile shows no other growth with 4 KiB). That it leaves a
// connection's stack no larger than the growth deep down did is reasoned
// from the runtime's doubling, not measured.
const stackReserve = 4 << 10

// growStack makes a new connection's goroutine grow its stack here, near
// the bottom of its call chain, at once to a size its requests fit in.
// net/http starts each connection on a new goroutine, whose stack the
// runtime sizes by the average goroutine's (idle ones, mostly: a few KiB),
// so the first request outgrew it deep in the trust decision, ten frames
// down; the runtime then copies the stack and adjusts every frame on it,
// a lookup of each frame's stack map per frame. Measured in a CPU profile
// of the cold SDK sequence (a connection each): runtime.newstack 5.3% of
// the sidecar's CPU, about 6 µs a connection, against 3.6% for the bare
// server, whose one growth is in net/http. Grown here, three frames deep,
// the copy adjusts three frames. It runs once per connection; the array
// is zeroed then (the read keeps the compiler from removing it).
//
//go:noinline
func growStack(i int) byte {
	var b [stackReserve]byte
	b[i%stackReserve] = 1
	return b[(i+1)%stackReserve]
}

// tokenPolicy applies imds.tokens and the IMDSv2 token binding: a token
// opens only what the caller it was issued to may open.
func (s *Server) tokenPolicy(r *http.Request, ci *connInfo, c *agent.Caller, id agent.Identity, start time.Time) error {
	tok, hasTok := r.Header[tokenHeader]
	if !hasTok {
		if id.Config().IMDS.Tokens == config.TokensRequired {
			return errV2Needed
		}
		return nil
	}
	if len(tok) != 1 || !s.tokenValid(ci, tok[0], id.Client(), c, s.now(start)) {
		return errBadIMDSv2
	}
	return nil
}

// errorBody is the JSON error of PRODUCT.md.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// publicError maps an error to the status, code and message that are safe
// for the caller it was produced for: the one error→status mapper.
func publicError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	out := &apiError{status: http.StatusServiceUnavailable, code: "Unavailable", msg: "credentials are not available"}
	var ge *agent.Error
	if errors.As(err, &ge) {
		switch ge.Kind {
		case agent.KindNoClient:
			out.status, out.code, out.msg = http.StatusForbidden, "AccessDenied", "this caller is not trusted by any client of the sidecar's config"
		case agent.KindBadToken:
			out.status, out.code, out.msg = http.StatusUnauthorized, "Unauthorized", "the authorization token is not valid"
			switch jwtauth.ReasonOf(err) {
			case jwtauth.ReasonBusy:
				// The source's budget of new-token verifications is spent.
				return errJWTBusy
			case jwtauth.ReasonUnavailable:
				// New tokens fail closed while their keys or the API server
				// cannot be reached; retrying later may succeed.
				return errJWTUnavailable
			}
		case agent.KindRoleNotAllowed:
			return errNoRole
		case agent.KindSourceRejected:
			out.status, out.code, out.msg = http.StatusBadGateway, "STSError", ge.Msg
		default:
			out.msg = ge.Msg
		}
	}
	return out
}

// resultOf is the audit record's result for a handler's outcome.
func resultOf(err error) string {
	if err == nil {
		return "success"
	}
	return publicError(err).code
}

// fail writes err's public form and records the metric; it returns the
// status written.
func (s *Server) fail(w http.ResponseWriter, record func(int, time.Duration), start time.Time, err error) int {
	e := publicError(err)
	b, _ := json.Marshal(errorBody{Code: e.code, Message: e.msg})
	h := w.Header()
	h["Content-Type"] = jsonType
	h.Set("Content-Length", strconv.Itoa(len(b)))
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	w.WriteHeader(e.status)
	w.Write(b)
	var d time.Duration
	if !start.IsZero() {
		d = time.Since(start)
	}
	record(e.status, d)
	return e.status
}

var (
	jsonType = []string{"application/json"}
	textType = []string{"text/plain"}
)

func (s *Server) write(w http.ResponseWriter, record func(int, time.Duration), start time.Time, ctype []string, body []byte) {
	// Content-Length is left to net/http: for a body written in one piece
	// before the handler returns it sets it without allocating.
	w.Header()["Content-Type"] = ctype
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	record(http.StatusOK, time.Since(start))
}

// putToken issues an IMDSv2 token bound to the caller; a caller that
// matches no client gets a token that opens nothing.
func (s *Server) putToken(w http.ResponseWriter, q call) ([]byte, *agent.Credentials, error) {
	r := q.r
	if _, proxied := r.Header["X-Forwarded-For"]; proxied {
		// As EC2 does: a token never goes through a proxy (SSRF defence).
		return nil, nil, errProxied
	}
	ttlv := r.Header[tokenTTLHeader]
	var v string
	if len(ttlv) > 0 {
		v = ttlv[0]
	}
	ttl, err := strconv.Atoi(v)
	if v == "" || err != nil || ttl < 1 || ttl > maxTokenTTL {
		return nil, nil, errTTL
	}
	exp := s.clk.Now().Add(time.Duration(ttl) * time.Second)
	tok := s.tokens.appendIssue(nil, exp, q.id.Client(), q.c.Addr)
	if hops := q.id.Config().IMDS.HopLimit; hops > 0 {
		if ci := q.ci; ci != nil && ci.conn != nil {
			if err := setHopLimit(ci.conn, hops); err != nil {
				// Fail closed: a token must not travel further than allowed.
				s.log.Error("cannot apply imds.hop_limit; token refused", zap.Error(err))
				return nil, nil, errHopLimit
			}
		}
	}
	// Go and Rust SDKs fail without the TTL echoed: the request's own
	// value when it is the number's one spelling (as SDKs send it; no
	// allocation), else the number as parsed ("+60", "060" -> "60").
	echo := ttlv[:1]
	if v[0] < '1' || v[0] > '9' { // a sign or a leading zero
		echo = []string{strconv.Itoa(ttl)}
	}
	w.Header()[tokenTTLHeader] = echo
	if ci := q.ci; ci != nil {
		// SDKs send the token on the connection that fetched it: the GETs
		// that follow find it verified (the HMAC it would cost again, on
		// every cold sequence, proves nothing a token just issued here to
		// this client does not).
		ci.token.Store(&verifiedToken{token: string(tok), client: q.id.Client(), exp: exp.Unix()})
	}
	return tok, nil, nil
}

// now is the clock's time for a request the adapter started at start:
// start itself on the real clock (a time.Now cost ~100 ns on the bench
// machine, a quarter of the handler's own work on a cached request), the
// injected clock's reading otherwise.
func (s *Server) now(start time.Time) time.Time {
	if s.realClock {
		return start.Round(0) // as clock.Real.Now
	}
	return s.clk.Now()
}

// tokenValid verifies an IMDSv2 token at now, remembering the last one
// verified on the connection (its address is fixed; the client is
// compared).
func (s *Server) tokenValid(ci *connInfo, tok, client string, c *agent.Caller, now time.Time) bool {
	if ci != nil {
		if m := ci.token.Load(); m != nil && m.token == tok && m.client == client && now.Unix() < m.exp {
			return true
		}
	}
	exp, ok := s.tokens.check(tok, now, client, c.Addr)
	if ok && ci != nil {
		ci.token.Store(&verifiedToken{token: tok, client: client, exp: exp})
	}
	return ok
}

// imdsCreds serves .../security-credentials[-extended]/NAME.
func (s *Server) imdsCreds(slot int) handler {
	render := renderIMDS
	if slot == slotIMDSExtended {
		render = renderIMDSExtended
	}
	return func(_ http.ResponseWriter, q call) ([]byte, *agent.Credentials, error) {
		return s.vend(q, slot, render)
	}
}

// ecsCreds serves /creds (the default role) and /role/NAME.
func (s *Server) ecsCreds(_ http.ResponseWriter, q call) ([]byte, *agent.Credentials, error) {
	return s.vend(q, slotECS, renderECS)
}

// vend hands out the credentials of the role the adapter read from the path
// ("" = the caller's default role).
func (s *Server) vend(q call, slot int, render func(*agent.Credentials) []byte) ([]byte, *agent.Credentials, error) {
	creds, err := s.agent.CredentialsFor(q.r.Context(), q.id, q.c, q.role)
	if err != nil {
		return nil, nil, err
	}
	return creds.Rendered(slot, render), creds, nil
}

// roleList answers the caller's default role name: one line, no trailing
// newline (botocore appends the body to its next URL).
func roleList(_ http.ResponseWriter, q call) ([]byte, *agent.Credentials, error) {
	return []byte(q.id.DefaultRole()), nil, nil
}

// iamInfo names the caller's default role as its instance profile, in the
// account of that same role.
func (s *Server) iamInfo(_ http.ResponseWriter, q call) ([]byte, *agent.Credentials, error) {
	role := q.id.DefaultRole()
	if role == "" {
		return nil, nil, errNoRole
	}
	b, _ := json.Marshal(struct {
		Code               string
		LastUpdated        string
		InstanceProfileArn string
		InstanceProfileId  string
	}{"Success", s.clk.Now().UTC().Format(timeFormat), "arn:aws:iam::" + q.id.Account() + ":instance-profile/" + role, instanceProfileID(role)})
	return b, nil, nil
}

func metadata(value func(*config.Config) string) handler {
	return func(_ http.ResponseWriter, q call) ([]byte, *agent.Credentials, error) {
		return []byte(value(q.id.Config())), nil, nil
	}
}

// identityDocument is the instance identity document, in the account of
// the caller's own default role (the account iam/info names).
func (s *Server) identityDocument(_ http.ResponseWriter, q call) ([]byte, *agent.Credentials, error) {
	cfg := q.id.Config()
	b, _ := json.MarshalIndent(map[string]any{
		"accountId":        q.id.Account(),
		"architecture":     "x86_64",
		"availabilityZone": cfg.Region + "a",
		"imageId":          "ami-00000000000000000",
		"instanceId":       instanceID(cfg),
		"instanceType":     "t3.micro",
		"pendingTime":      "2024-01-01T00:00:00Z",
		"privateIp":        "127.0.0.1",
		"region":           cfg.Region,
		"version":          "2017-09-30",
	}, "", "  ")
	return b, nil, nil
}
